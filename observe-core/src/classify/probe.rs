//! The classification generated code uses: `(&&&&Probe(&value)).observe_classify()`
//! picks, by autoref specialisation, the most specific of the impls below
//! that applies to the value's type (a `Result` whose `Ok` is an
//! [`Outcome`] and whose `Err` is an [`ErrorType`], down to any value at all).

use super::traits::{short_type_name, ErrorType, Outcome};
use super::Classified;
use std::borrow::Cow;

/// Wraps a call's result for classification by autoref specialisation:
/// generated code calls `(&&&&Probe(&value)).observe_classify()`, and the most
/// specific of the impls below that applies wins.
#[derive(Debug)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

impl<T: ?Sized> Clone for Probe<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Probe<'_, T> {}

fn implicit(reason: Cow<'static, str>) -> Classified {
    Classified::Failed {
        message: reason.to_string(),
        error_type: reason,
        timeout: false,
        implicit: true,
    }
}

/// Level 4: `Result<T: Outcome, E: ErrorType + Display>`.
pub trait ClassifyL4 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T: Outcome, E: ErrorType + std::fmt::Display> ClassifyL4 for &&&Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(v) => v.failure().map_or(Classified::Ok, implicit),
            Err(e) => Classified::Failed {
                error_type: e.error_type(),
                message: e.to_string(),
                timeout: e.is_timeout(),
                implicit: false,
            },
        }
    }
}

/// Level 3: `Result<T, E: ErrorType + Display>`.
pub trait ClassifyL3 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E: ErrorType + std::fmt::Display> ClassifyL3 for &&Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Failed {
                error_type: e.error_type(),
                message: e.to_string(),
                timeout: e.is_timeout(),
                implicit: false,
            },
        }
    }
}

/// Level 2: `Result<T, E: Display>`: `error.type` is `E`'s type name.
pub trait ClassifyL2 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E: std::fmt::Display> ClassifyL2 for &Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(e) => Classified::Failed {
                error_type: Cow::Borrowed(short_type_name::<E>()),
                message: e.to_string(),
                timeout: false,
                implicit: false,
            },
        }
    }
}

/// Level 1: `Result<T, E>` of any `E` (named by its type), or a value that
/// implements [`Outcome`].
pub trait ClassifyL1 {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T, E> ClassifyL1 for Probe<'_, Result<T, E>> {
    fn observe_classify(&self) -> Classified {
        match self.0 {
            Ok(_) => Classified::Ok,
            Err(_) => Classified::Failed {
                error_type: Cow::Borrowed(short_type_name::<E>()),
                message: short_type_name::<E>().to_owned(),
                timeout: false,
                implicit: false,
            },
        }
    }
}

/// Level 1 for values: [`Outcome`].
pub trait ClassifyOutcome {
    /// Classifies.
    fn observe_classify(&self) -> Classified;
}
impl<T: Outcome + ?Sized> ClassifyOutcome for Probe<'_, T> {
    fn observe_classify(&self) -> Classified {
        self.0.failure().map_or(Classified::Ok, implicit)
    }
}

/// Level 0: anything else succeeded.
pub trait ClassifyAny {
    /// Classifies.
    fn observe_classify(self) -> Classified;
}
impl<T: ?Sized> ClassifyAny for Probe<'_, T> {
    fn observe_classify(self) -> Classified {
        Classified::Ok
    }
}

/// Classifies `value` as generated code does (for tests and manual use).
#[macro_export]
#[doc(hidden)]
macro_rules! __observe_classify {
    ($value:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::classify::{
            ClassifyAny as _, ClassifyL1 as _, ClassifyL2 as _, ClassifyL3 as _, ClassifyL4 as _,
            ClassifyOutcome as _,
        };
        (&&&&$crate::__private::classify::Probe(&$value)).observe_classify()
    }};
}
