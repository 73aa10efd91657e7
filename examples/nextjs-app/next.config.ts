import path from "node:path";
import type { NextConfig } from "next";

const config: NextConfig = {
  // Everything is rendered per request: a flag change must show on the next page load (Edgeplane
  // serves it within a second), and every page depends on the signed-in user.
  poweredByHeader: false,
  // The repository is an npm workspace: its root, not this folder, holds node_modules.
  turbopack: { root: path.resolve(import.meta.dirname, "..", "..") },
  outputFileTracingRoot: path.resolve(import.meta.dirname, "..", ".."),
};

export default config;
