//! The `wxgrades` binary: parse the command line, run, print the error chain once, exit.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(wxgrades::cli::run(&args));
}
