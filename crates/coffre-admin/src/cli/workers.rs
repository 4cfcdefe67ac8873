//! `coffre admin workers …`: the gateway's background workers.

use super::api::*;
use super::*;

pub(super) fn run(cmd: WorkersCommand) -> Result<(), String> {
    let v = match cmd {
        WorkersCommand::List { api, json } => {
            let v = call(&api, "GET", "/v1/workers")?;
            if json {
                print_json(&v);
            } else {
                print_table(&v);
            }
            return Ok(());
        }
        WorkersCommand::Set { api, name, knob, value } => {
            let knob = match knob {
                WorkerKnob::Rate => "rate",
                WorkerKnob::Tranquility => "tranquility",
            };
            call(&api, "PUT", &format!("/v1/workers/{}?{knob}={value}", enc(&name)))?
        }
        WorkersCommand::Pause { api, name } => call(&api, "POST", &format!("/v1/workers/{}/pause", enc(&name)))?,
        WorkersCommand::Resume { api, name } => call(&api, "POST", &format!("/v1/workers/{}/resume", enc(&name)))?,
    };
    println!("{}", line(&v));
    Ok(())
}

fn print_table(v: &serde_json::Value) {
    println!(
        "{:<14} {:<8} {:>5} {:>14}  {:<10} {:>9} {:>6}  COUNTERS",
        "NAME", "STATE", "TRANQ", "RATE", "UNIT", "STEPS", "ERRORS"
    );
    for w in v["workers"].as_array().into_iter().flatten() {
        println!("{}", line(w));
        if let Some(e) = w["last_error"].as_str() {
            println!("{:<14} last error: {e}", "");
        }
    }
}

/// One worker on one line.
fn line(w: &serde_json::Value) -> String {
    let rate = match w["rate"].as_u64() {
        None => "-".to_string(),
        Some(0) => "unlimited".to_string(),
        Some(r) => r.to_string(),
    };
    let counters = w["counters"]
        .as_object()
        .map(|c| c.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{:<14} {:<8} {:>5} {:>14}  {:<10} {:>9} {:>6}  {counters}",
        w["name"].as_str().unwrap_or(""),
        w["state"].as_str().unwrap_or(""),
        w["tranquility"],
        rate,
        w["rate_unit"].as_str().unwrap_or("-"),
        w["steps"],
        w["errors"],
    )
}
