//! `functrace-sidecar`: the proxy (see the crate docs and docs/sidecar.md) and, as `view`, the
//! trace viewer. The process: its allocator, its runtime and its signals.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use functrace_sidecar::cli::{Command, Flags};
use functrace_sidecar::view;
use functrace_sidecar::watch::ConfigWatch;
use functrace_sidecar::{self as sidecar, Running};
use tokio::signal::unix::{signal, SignalKind};

/// mimalloc rather than glibc's allocator: fewer instructions per request (2% on HTTP/1.1,
/// 11% from HTTP/2 clients; benches/RESULTS.md), and without transparent huge pages a small
/// RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut flags = Flags::parse();
    if let Some(Command::View(args)) = flags.command.take() {
        return run_view(args.into());
    }
    // Before the first read, so that a change in between still reloads.
    let watch = ConfigWatch::new(flags.config.clone());
    let config = match flags.effective_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("functrace-sidecar: invalid config: {err}");
            return ExitCode::from(2);
        }
    };
    if flags.check_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    functrace_sidecar::open_files::raise_limit();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("functrace-sidecar: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(flags, config, watch))
}

/// `functrace-sidecar view`: 0 when shown, 1 on an unreadable file or an unknown trace.
fn run_view(options: view::Options) -> ExitCode {
    let result = view::run(&options, &mut std::io::stdout(), &mut std::io::stderr());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("functrace-sidecar view: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One worker thread per CPU the process may run on. On one CPU, as a sidecar often gets, a
/// single-threaded runtime: it serves about a third more requests per second there than a
/// one-worker multi-threaded one, which hands work between its driver and worker.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

async fn run(flags: Flags, config: sidecar::Config, mut watch: ConfigWatch) -> ExitCode {
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("functrace-sidecar: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    let running = match sidecar::start(config).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("functrace-sidecar: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The bound addresses (port 0 picks one), then `ready`, for whoever started us.
    let mut stdout = std::io::stdout().lock();
    for (name, address) in &running.listeners {
        let _ = writeln!(stdout, "{name} {address}");
    }
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
    drop(stdout);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => reload(&flags, &running),
            _ = watch.changed() => {
                eprintln!("functrace-sidecar: the config file changed");
                reload(&flags, &running);
            }
        }
    }
    eprintln!("functrace-sidecar: stopping: draining in-flight requests");
    running.shutdown().await;
    eprintln!("functrace-sidecar: stopped");
    ExitCode::SUCCESS
}

/// Re-reads the config file, with the same flags on top; a bad one leaves the old in place.
fn reload(flags: &Flags, running: &Running) {
    match flags
        .effective_config()
        .and_then(|config| running.shared.reload(config))
    {
        Ok(()) => eprintln!("functrace-sidecar: config reloaded"),
        Err(err) => eprintln!("functrace-sidecar: reload rejected, the old config stays: {err}"),
    }
}
