use std::process::ExitCode;

fn main() -> ExitCode {
    // Logs only when asked, and only to stderr: the compiler's own output
    // must reach the build untouched.
    if let Ok(filter) = std::env::var("GRIDCC_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let code = gridcc_client::cli::main(std::env::args_os().collect());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
