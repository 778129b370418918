fn main() -> std::process::ExitCode {
    certlab::cli::main()
}
