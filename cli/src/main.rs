//! `binlog-cdc`: the command line.
//!
//! `binlog-cdc parse` decodes a binlog (local files, or a range of a live
//! server's log) into change events, one JSON object per line on stdout, with
//! a summary on stderr. `binlog-cdc run` runs the pipeline in this process;
//! `binlog-cdc status` says where the stream stands. Each subcommand is a
//! module of its own (`parse`, `run`, `status`); `args` holds their flags.

mod args;
mod parse;
mod run;
mod status;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BINLOG_CDC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    // parse decodes on one core; run's file I/O may use the blocking pool
    // while a chunk decodes.
    let runtime = match &cli.command {
        Command::Parse(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Command::Run(_) | Command::Status(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("binlog-cdc: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Parse(args) => runtime.block_on(parse::parse(args)),
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Status(args) => match runtime.block_on(status::status(args)) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("binlog-cdc: error [{}]: {e}", e.name());
            ExitCode::FAILURE
        }
    }
}
