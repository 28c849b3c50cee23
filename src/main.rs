//! The `bifrost-providers` binary: the command line of `cli`, on mimalloc.

/// mimalloc: the server allocates per request from several threads (requests, the store
/// writer, the log); glibc's allocator spent a tenth of a write's CPU in `malloc`/`free` and
/// consolidation (`BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    bifrost_providers::cli::run().await
}
