//! The `wxgrades` binary: parse the command line, run, print the error chain once, exit.

fn main() {
    limit_malloc_arenas();
    // `args_os`: an argument that is not UTF-8 is a usage error from the parser, not a panic.
    std::process::exit(wxgrades::cli::run(std::env::args_os().skip(1)));
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per core), each keeping
/// freed memory: with 64 workers that is most of the server's resident memory. Two arenas cost
/// nothing measurable in throughput here and keep memory flat under load.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
