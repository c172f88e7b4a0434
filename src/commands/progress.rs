//! Apply progress: a spinner per call in flight on a terminal, plain lines otherwise.

use std::collections::BTreeMap;

use super::out;
use crate::apply;
use crate::model::Address;
use crate::render;

pub(super) struct Progress {
    bars: Option<(indicatif::MultiProgress, BTreeMap<Address, indicatif::ProgressBar>)>,
}

impl Progress {
    pub(super) fn new() -> Progress {
        let terminal = render::colour_wanted();
        Progress { bars: terminal.then(|| (indicatif::MultiProgress::new(), BTreeMap::new())) }
    }

    pub(super) fn event(&mut self, event: &apply::Event<'_>) {
        match (&mut self.bars, event) {
            (Some((multi, bars)), apply::Event::Started { address, action }) => {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(format!("{address}: {}…", render::running_text(*action)));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bars.insert((*address).clone(), bar);
            }
            (Some((multi, bars)), apply::Event::Finished(step)) => {
                if let Some(bar) = bars.remove(&step.address) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(render::step_line(step));
            }
            (None, apply::Event::Finished(step)) => out(&format!("{}\n", render::step_line(step))),
            (None, apply::Event::Started { .. }) => {}
        }
    }

    pub(super) fn finish(self) {
        if let Some((multi, bars)) = self.bars {
            for bar in bars.into_values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}
