//! `coffre admin workers …`: the gateway's background workers.

use super::api::*;
use super::*;
use crate::api::{Worker, WorkerKnobQuery, WorkerList, WorkerPause, WorkerPut, WorkerResume, WorkersGet};

pub(super) fn run(cmd: WorkersCommand) -> Result<(), String> {
    let w = match cmd {
        WorkersCommand::List { api, json } => {
            let v = ask_at::<WorkersGet>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                print_table(&v);
            }
            return Ok(());
        }
        WorkersCommand::Set { api, name, knob, value } => {
            let query = match knob {
                WorkerKnob::Rate => WorkerKnobQuery {
                    rate: Some(value),
                    tranquility: None,
                },
                WorkerKnob::Tranquility => WorkerKnobQuery {
                    rate: None,
                    tranquility: Some(value),
                },
            };
            ask::<WorkerPut>(&api, name, query, ())?
        }
        WorkersCommand::Pause { api, name } => ask_at::<WorkerPause>(&api, name)?,
        WorkersCommand::Resume { api, name } => ask_at::<WorkerResume>(&api, name)?,
    };
    println!("{}", line(&w));
    Ok(())
}

fn print_table(v: &WorkerList) {
    println!(
        "{:<14} {:<8} {:>5} {:>14}  {:<10} {:>9} {:>6}  COUNTERS",
        "NAME", "STATE", "TRANQ", "RATE", "UNIT", "STEPS", "ERRORS"
    );
    for w in &v.workers {
        println!("{}", line(w));
        if let Some(e) = &w.last_error {
            println!("{:<14} last error: {e}", "");
        }
    }
}

/// One worker on one line.
fn line(w: &Worker) -> String {
    let rate = match w.rate {
        None => "-".to_string(),
        Some(0) => "unlimited".to_string(),
        Some(r) => r.to_string(),
    };
    let counters = w
        .counters
        .iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{:<14} {:<8} {:>5} {:>14}  {:<10} {:>9} {:>6}  {counters}",
        w.name,
        w.state,
        w.tranquility,
        rate,
        w.rate_unit.as_deref().unwrap_or("-"),
        w.steps,
        w.errors,
    )
}
