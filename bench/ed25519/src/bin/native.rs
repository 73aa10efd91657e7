//! Native timing of `verify_n`.
fn main() {
    let n = 20_000;
    edgeplane_bench_ed25519::verify_n(1_000);
    let t0 = std::time::Instant::now();
    let ok = edgeplane_bench_ed25519::verify_n(n);
    let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    assert_eq!(ok, n);
    println!("native: {us:.1} µs per verification ({n} runs)");
}
