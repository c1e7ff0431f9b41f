//! burrow-bench: measures burrow and its peers side by side in one run, interleaved, and writes
//! the results as JSON and as docs/perf.md with SVG charts. It never fails on a number.

mod api;
mod cli;
mod engines;
mod model;
mod net;
mod proc;
mod report;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use model::{Figure, MachineInfo, Results};

/// Benchmark burrow against RootlessKit, slirp4netns, pasta, podman and ctr on this machine.
///
/// Needs a machine provisioned by tests/provision.sh (run as root); launchers and clients run as
/// the unprivileged test user. Build first: `bash scripts/build-release.sh`
/// (`cargo build --release --workspace` also works, with a dynamically linked burrow).
#[derive(Debug, Parser)]
#[command(name = "burrow-bench")]
struct Args {
    /// Fewer repetitions and shorter runs: about 3 minutes instead of 15.
    #[arg(long)]
    quick: bool,
    /// Only this step's figures (port, ns-to-host, conn, launcher, run, ps, images, pull, bypass,
    /// bypass-soak, api, compose, build, store), or those of every step whose id contains this
    /// text; the others are kept from the last results file.
    #[arg(long)]
    only: Option<String>,
    /// Length of the socket-bypass soak (short connections in a loop) in seconds [default: 60,
    /// 10 with --quick; 3600 for the 1-hour soak].
    #[arg(long, value_name = "SECS")]
    soak_secs: Option<u64>,
    /// Where the machine-readable results go.
    #[arg(long, default_value = "docs/perf/results.json")]
    json: PathBuf,
    /// The page to regenerate (charts go to perf/ beside it).
    #[arg(long, default_value = "docs/perf.md")]
    markdown: PathBuf,
}

/// Knobs that `--quick` turns down.
pub struct Settings {
    pub reps: usize,
    pub iperf_secs: u64,
    pub requests: usize,
    pub client_threads: usize,
    pub soak_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burrow-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<()> {
    let machine = burrow_testsupport::TestMachine::get().context(
        "this machine is not provisioned for benchmarks: run `bash tests/provision.sh` as root first",
    )?;
    let settings = if args.quick {
        Settings {
            reps: 1,
            iperf_secs: 3,
            requests: 400,
            client_threads: 4,
            soak_secs: args.soak_secs.unwrap_or(10),
        }
    } else {
        Settings {
            reps: 3,
            iperf_secs: 5,
            requests: 2000,
            client_threads: 8,
            soak_secs: args.soak_secs.unwrap_or(60),
        }
    };
    // The tests and the benchmark share the test user's services (its rootless containerd,
    // launchers and ports): hold the tests' machine-wide lock for the whole run so neither
    // disturbs the other.
    eprintln!("burrow-bench: waiting for the machine-wide test lock (rootless-containerd) ...");
    let _lock = machine.exclusive("rootless-containerd");
    let mut figures: Vec<Figure> = Vec::new();
    let m = &machine;
    let s = &settings;
    type Step<'a> = (&'a str, Box<dyn Fn() -> Vec<Figure> + 'a>);
    let steps: Vec<Step> = vec![
        ("port", Box::new(|| net::port_forwarding(m, s))),
        ("ns-to-host", Box::new(|| vec![net::ns_to_host(m, s)])),
        ("conn", Box::new(|| net::connection_rate(m, s))),
        ("launcher", Box::new(|| vec![net::start_to_ready(m, s)])),
        ("run", Box::new(|| cli::run_rm(m, s))),
        ("ps images", Box::new(|| cli::list_latency(m, s))),
        ("pull", Box::new(|| vec![cli::pull(m, s)])),
        ("bypass", Box::new(|| cli::bypass(m, s))),
        ("bypass-soak", Box::new(|| vec![cli::bypass_soak(m, s)])),
        ("api", Box::new(|| api::docker_api(m, s))),
        ("compose", Box::new(|| engines::compose(m, s))),
        ("build", Box::new(|| engines::build(m, s))),
        ("store", Box::new(|| store::store(m, s))),
    ];
    // A step's exact id picks that step alone (`--only bypass` leaves the 1-hour `bypass-soak`
    // figure alone); any other text picks every step whose id contains it or is contained in it.
    let exact = args.only.as_deref().is_some_and(|o| {
        steps
            .iter()
            .any(|(ids, _)| ids.split(' ').any(|id| id == o))
    });
    let wanted = |id: &str| {
        args.only.as_deref().is_none_or(|o| {
            if exact {
                id == o
            } else {
                id.contains(o) || o.contains(id)
            }
        })
    };
    // The CLI figures talk to the test user's rootless containerd: set it up when it is not.
    let mut installed_here = false;
    for (ids, step) in steps {
        if ids.split(' ').any(wanted) {
            if [
                "run",
                "ps images",
                "pull",
                "bypass",
                "bypass-soak",
                "api",
                "compose",
                "build",
                "store",
            ]
            .contains(&ids)
                && !installed_here
            {
                match cli::ensure_rootless_containerd(m) {
                    Ok(v) => installed_here = v,
                    Err(e) => eprintln!("burrow-bench: burrow setup install failed: {e:#}"),
                }
            }
            eprintln!("burrow-bench: measuring {ids} ...");
            figures.extend(step());
        }
    }
    if installed_here {
        cli::remove_rootless_containerd(m);
    }
    cleanup_state_dirs(&machine.xdg_runtime_dir);
    // With --only, the figures measured now replace theirs in the last results, in their
    // places; the others stay (their own conditions and dates are in the JSON they came from).
    if args.only.is_some() {
        let previous: Option<Results> = std::fs::read(&args.json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(prev) = previous {
            figures = merge_figures(prev.figures, figures);
        }
    }
    let results = Results {
        date: today(),
        quick: args.quick,
        repetitions: settings.reps,
        machine: machine_info(),
        figures,
    };
    print_summary(&results);
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    report::write_all(&results, &args.json, &args.markdown)?;
    eprintln!(
        "burrow-bench: wrote {} and {}",
        args.json.display(),
        args.markdown.display()
    );
    Ok(())
}

/// The previous run's figures with those measured now put in their places (new ones at the end),
/// so that a partial rerun keeps the page's order.
fn merge_figures(previous: Vec<Figure>, mut now: Vec<Figure>) -> Vec<Figure> {
    let mut merged: Vec<Figure> = previous
        .into_iter()
        .map(|old| match now.iter().position(|n| n.id == old.id) {
            Some(i) => now.remove(i),
            None => old,
        })
        .collect();
    merged.append(&mut now);
    merged
}

fn print_summary(results: &Results) {
    for fig in &results.figures {
        println!("{} ({})", fig.title, fig.unit);
        for row in &fig.rows {
            match row.median() {
                Some(v) => println!("  {:<48} {v:>10.3}", row.name),
                None => println!(
                    "  {:<48} not measured: {}",
                    row.name,
                    row.not_measured.as_deref().unwrap_or("")
                ),
            }
        }
        for r in fig.ratios() {
            println!("  ratio {} vs {}: {:.2}x", r.ours, r.peer, r.ratio);
        }
    }
    for g in api::goals(&results.figures)
        .into_iter()
        .chain(engines::goals(&results.figures))
        .chain(net::goals(&results.figures))
    {
        println!("{g}");
    }
}

fn cleanup_state_dirs(runtime_dir: &str) {
    if let Ok(rd) = std::fs::read_dir(runtime_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("burrow-bench-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn today() -> String {
    proc::run_host(
        &["date", "-u", "+%Y-%m-%d %H:%M UTC"],
        std::time::Duration::from_secs(5),
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_default()
}

fn machine_info() -> MachineInfo {
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_default();
    MachineInfo {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memory_gib: mem_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        os,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(id: &str, title: &str) -> Figure {
        Figure {
            id: id.into(),
            title: title.into(),
            unit: "Gbit/s".into(),
            higher_is_better: true,
            conditions: String::new(),
            rows: Vec::new(),
        }
    }

    #[test]
    fn a_partial_rerun_keeps_the_page_order() {
        let prev = vec![fig("a", "old"), fig("b", "old"), fig("c", "old")];
        let now = vec![fig("d", "new"), fig("b", "new")];
        let merged = merge_figures(prev, now);
        let got: Vec<(&str, &str)> = merged
            .iter()
            .map(|f| (f.id.as_str(), f.title.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a", "old"), ("b", "new"), ("c", "old"), ("d", "new")]
        );
    }
}
