//! The wasmtime engine, configured as Spin's (`impl Default for Config` and `EngineBuilder` in
//! spinframework/spin crates/core/src/lib.rs, at 94a8fc8a).
//!
//! The host is where the CPU per request of the Spin build is measured, so it runs guests with
//! the two engine settings of Spin's that change that cost: epoch interruption, whose check at
//! every loop head and function entry is compiled into the guest, with a thread ticking the
//! epoch every 10 ms; and the pooling instance allocator, which reuses the memories, tables and
//! stacks of finished instances instead of mapping fresh ones for each request. With wasmtime's
//! defaults instead (no epochs, fresh mappings per request) the CPU a request takes here would
//! not predict what it takes on Spin.

use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Memory, MemoryType, PoolingAllocationConfig,
    Result, Store,
};

/// Spin's `DEFAULT_EPOCH_TICK_INTERVAL`.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// What Spin gives each `Store` when the trigger sets no timeout: a deadline "practically
/// forever" away that cannot overflow when added to the current epoch.
pub const NO_DEADLINE: u64 = u64::MAX / 2;

const MB: usize = 1 << 20;
const GB: usize = 1 << 30;

/// Builds the engine and starts its epoch ticker; the flag says whether pooling is on.
pub fn new() -> Result<(Engine, bool)> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let pooling = use_pooling_allocator_by_default();
    if pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config()));
    }
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    std::thread::spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        match weak.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => break,
        }
    });
    Ok((engine, pooling))
}

/// Spin's pooling limits, with its environment overrides of the instance count only.
fn pooling_config() -> PoolingAllocationConfig {
    let max_instances = env("SPIN_MAX_INSTANCE_COUNT", 1_000);
    let mut p = PoolingAllocationConfig::default();
    p.total_component_instances(env("SPIN_WASMTIME_INSTANCE_COUNT", max_instances))
        .total_memories(max_instances)
        .total_tables(2 * max_instances)
        .total_stacks(max_instances)
        .total_core_instances(4 * max_instances)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 * GB)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    p
}

/// A numeric environment override; an unparsable value is ignored (Spin panics on it).
fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Spin's probe: `SPIN_WASMTIME_POOLING=1`/`0` decides; otherwise pooling is used if 42 bits of
/// address space can be reserved for one memory (the pool needs about that much, which some
/// aarch64 and riscv64 systems lack).
fn use_pooling_allocator_by_default() -> bool {
    const BITS: u32 = 42;
    match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    let mut config = Config::new();
    config.wasm_memory64(true).memory_reservation(1 << BITS);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = Store::new(&engine, ());
    // The maximum is in 64 KiB pages.
    let ty = MemoryType::new64(0, Some(1 << (BITS - 16)));
    Memory::new(&mut store, ty).is_ok()
}
