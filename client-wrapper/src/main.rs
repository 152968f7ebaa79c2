use std::process::ExitCode;

fn main() -> ExitCode {
    // Logs only when asked, and only to stderr: the compiler's own output
    // must reach the build untouched.
    if let Ok(filter) = std::env::var("GRIDCC_LOG") {
        gridcc_proto::serve::init_logs(tracing_subscriber::EnvFilter::new(filter));
    }
    let code = gridcc_client::cli::main(std::env::args_os().collect());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
