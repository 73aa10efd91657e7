import path from "node:path";
import type { NextConfig } from "next";

// The repository is an npm workspace: its root, not this folder, holds node_modules.
const workspaceRoot = path.resolve(import.meta.dirname, "..", "..");

const config: NextConfig = {
  poweredByHeader: false,
  turbopack: { root: workspaceRoot },
  outputFileTracingRoot: workspaceRoot,
  // `next dev` would otherwise write an AGENTS.md of its own into the app's folder.
  agentRules: false,
  experimental: { agentUpgrade: false },
};

export default config;
