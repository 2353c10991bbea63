//! Threads that fail: what a panic said, and (in debug builds only) panics injected on
//! purpose so tests can watch Hookscope notice and recover from them.

use std::any::Any;

/// What a caught panic said.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Panics at `point` when `HOOKSCOPE_INJECT_PANIC` names it (`point` or `point:N` for the
/// first N times; several separated by commas). Debug builds only: a release build never
/// reads the variable (compiled in both, so neither build has code of its own).
#[inline]
pub fn inject(point: &str) {
    if cfg!(debug_assertions) {
        injected::at(point);
    }
}

mod injected {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    /// Per point, how many more times it panics (`None`: every time).
    fn plan() -> &'static Mutex<HashMap<String, Option<u32>>> {
        static PLAN: OnceLock<Mutex<HashMap<String, Option<u32>>>> = OnceLock::new();
        PLAN.get_or_init(|| {
            let text = std::env::var("HOOKSCOPE_INJECT_PANIC").unwrap_or_default();
            let plan = text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| match item.split_once(':') {
                    Some((point, times)) => (point.to_string(), times.parse().ok()),
                    None => (item.to_string(), None),
                })
                .collect();
            Mutex::new(plan)
        })
    }

    pub fn at(point: &str) {
        let fire = {
            let mut plan = plan()
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match plan.get_mut(point) {
                None => false,
                Some(None) => true,
                Some(Some(0)) => false,
                Some(Some(left)) => {
                    *left -= 1;
                    true
                }
            }
        };
        if fire {
            panic!("injected panic at {point} (HOOKSCOPE_INJECT_PANIC)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_says_what_it_said() {
        let caught = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "at 3");
        let caught = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "plain");
    }
}
