//! `binlog-cdc`: the command line.
//!
//! `binlog-cdc parse` decodes a binlog (local files, or a range of a live
//! server's log) into change events, one JSON object per line on stdout, with
//! a summary on stderr. `binlog-cdc run` runs the pipeline in this process;
//! `binlog-cdc status` says where the stream stands; `binlog-cdc
//! current-rows` prints the SQL of a table's current rows. Each subcommand
//! is a module of its own (`parse`, `run`, `status`, `current_rows`);
//! `args` holds their flags.

mod args;
mod current_rows;
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
    // parse: one worker thread reads the binlog ahead while the main thread
    // hands rows events to the decoder's threads and their change events
    // to stdout. run: chunks and fan-out shards run side by side.
    let workers = match &cli.command {
        Command::Parse(_) => 1,
        Command::Run(_) | Command::Status(_) | Command::CurrentRows(_) => {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build();
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
        Command::CurrentRows(args) => runtime.block_on(current_rows::print(args)),
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
