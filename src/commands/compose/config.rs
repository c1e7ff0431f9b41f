//! `burrow compose config`: loads the project and prints the normalised model (YAML or JSON),
//! or only its services, volumes or profiles; `-q` only validates.

use std::collections::BTreeSet;
use std::process::ExitCode;

use burrow::compose::{LoadOptions, Project};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Output: "yaml" (default) or "json".
    #[arg(long, default_value = "yaml")]
    pub format: String,
    /// Only validate: print nothing but warnings and errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the active services' names, one a line.
    #[arg(long)]
    pub services: bool,
    /// Print the top-level volumes' names, one a line.
    #[arg(long)]
    pub volumes: bool,
    /// Print every profile the services use, one a line.
    #[arg(long)]
    pub profiles: bool,
    /// Only these services (and what they depend on) [default: every active service].
    #[arg(value_name = "SERVICE")]
    pub names: Vec<String>,
}

pub fn run(args: Args, opts: &LoadOptions) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "yaml" | "json") {
        anyhow::bail!("unknown --format {:?}: use yaml or json", args.format);
    }
    let mut project = super::load(opts)?;
    if args.profiles {
        print_lines(all_profiles(&project));
        return Ok(ExitCode::SUCCESS);
    }
    let active = project.services_for(&args.names)?;
    project
        .compose
        .services
        .retain(|name, _| active.iter().any(|a| a == name.as_str()));
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    if args.services {
        print_lines(project.compose.services.keys().map(|k| k.to_string()));
    } else if args.volumes {
        print_lines(project.compose.volumes.keys().map(|k| k.to_string()));
    } else {
        let mut doc = project.document()?;
        escape_dollars(&mut doc);
        match args.format.as_str() {
            "json" => println!("{}", serde_json::to_string_pretty(&doc)?),
            _ => print!("{}", serde_yaml::to_string(&doc)?),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `$` → `$$` in every string value, so the output loads again as the same project.
fn escape_dollars(v: &mut serde_yaml::Value) {
    use serde_yaml::Value;
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Sequence(items) => items.iter_mut().for_each(escape_dollars),
        Value::Mapping(m) => m.values_mut().for_each(escape_dollars),
        Value::Tagged(t) => escape_dollars(&mut t.value),
        _ => {}
    }
}

fn all_profiles(project: &Project) -> BTreeSet<String> {
    project
        .compose
        .services
        .values()
        .flat_map(|s| s.profiles.iter().map(|p| p.to_string()))
        .collect()
}

fn print_lines(lines: impl IntoIterator<Item = String>) {
    for line in lines {
        println!("{line}");
    }
}
