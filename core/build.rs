//! Serves the committed OpenAPI document without its indentation: `openapi.json` stays
//! pretty-printed for review, and the runtimes' builds embed the same JSON at about half the
//! size.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let source = "src/http/openapi/openapi.json";
    println!("cargo:rerun-if-changed={source}");
    let document: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(source)?)?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?);
    std::fs::write(out.join("openapi.json"), serde_json::to_string(&document)?)?;
    Ok(())
}
