//! Apply progress: on a terminal a spinner per call in flight under an overall counter (done
//! of total, failures, elapsed); plain lines otherwise; events while the stream is on.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{out, stream};
use crate::apply::{self, Outcome};
use crate::model::Address;
use crate::render;

pub(super) struct Progress {
    bars: Option<Bars>,
    total: usize,
    done: usize,
    failed: usize,
    began: Instant,
}

struct Bars {
    multi: indicatif::MultiProgress,
    overall: indicatif::ProgressBar,
    running: BTreeMap<Address, indicatif::ProgressBar>,
}

impl Progress {
    /// Progress over `total` steps.
    pub(super) fn new(total: usize) -> Progress {
        let bars = (render::colour_wanted() && !stream::on()).then(|| {
            let multi = indicatif::MultiProgress::new();
            let overall = multi.add(indicatif::ProgressBar::new(total as u64));
            if let Ok(style) = indicatif::ProgressStyle::with_template("[{pos}/{len}] {msg} {elapsed}") {
                overall.set_style(style);
            }
            overall.set_message("0 failed");
            overall.enable_steady_tick(std::time::Duration::from_millis(500));
            Bars { multi, overall, running: BTreeMap::new() }
        });
        Progress { bars, total, done: 0, failed: 0, began: Instant::now() }
    }

    pub(super) fn event(&mut self, event: &apply::Event<'_>) {
        if let apply::Event::Finished(step) = event {
            self.done += 1;
            self.failed += usize::from(!matches!(step.outcome, Outcome::Done));
        }
        if stream::on() {
            match event {
                apply::Event::Started { address, action } => {
                    stream::emit(&render::stream::apply_start(address, *action));
                }
                apply::Event::Finished(step) => {
                    stream::emit(&render::stream::apply_finished(step));
                    stream::emit(&render::stream::apply_progress(
                        self.done,
                        self.total,
                        self.failed,
                        self.began.elapsed(),
                    ));
                }
            }
            return;
        }
        match (&mut self.bars, event) {
            (Some(bars), apply::Event::Started { address, action }) => {
                let bar = bars.multi.insert_before(&bars.overall, indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(format!("{address}: {}…", render::running_text(*action)));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bars.running.insert((*address).clone(), bar);
            }
            (Some(bars), apply::Event::Finished(step)) => {
                if let Some(bar) = bars.running.remove(&step.address) {
                    bar.finish_and_clear();
                    bars.multi.remove(&bar);
                }
                let _ = bars.multi.println(render::step_line(step));
                bars.overall.set_position(self.done as u64);
                bars.overall.set_message(format!("{} failed", self.failed));
            }
            (None, apply::Event::Finished(step)) => out(&format!("{}\n", render::step_line(step))),
            (None, apply::Event::Started { .. }) => {}
        }
    }

    pub(super) fn finish(self) {
        if let Some(bars) = self.bars {
            for bar in bars.running.into_values() {
                bar.finish_and_clear();
            }
            bars.overall.finish_and_clear();
            let _ = bars.multi.clear();
        }
    }
}
