//! Log macros that make the event name impossible to forget.

/// Whether `s` is a valid event name: lowercase snake_case, 1 to 64 bytes,
/// starting with a letter, no double or trailing underscore.
#[doc(hidden)]
pub const fn is_snake_case(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 || !b[0].is_ascii_lowercase() || b[b.len() - 1] == b'_' {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
        if !ok || (c == b'_' && i > 0 && b[i - 1] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Logs an event at a level with a mandatory snake_case event name, then
/// tracing-style fields and an optional message.
///
/// ```
/// # let (_, cap) = observe_core::testing::capture(|| {
/// observe_core::event!(tracing::Level::WARN, "retry_scheduled", attempt = 2, "retrying in {}s", 5);
/// # });
/// # assert_eq!(cap.lines[0]["event"], "retry_scheduled");
/// # assert_eq!(cap.lines[0]["message"], "retrying in 5s");
/// ```
///
/// A missing or non-snake_case name does not compile:
///
/// ```compile_fail
/// observe_core::event!(tracing::Level::INFO, "PaymentFailed");
/// ```
///
/// ```compile_fail
/// observe_core::event!(tracing::Level::INFO, order_id = 5);
/// ```
#[macro_export]
macro_rules! event {
    ($level:expr, $name:literal $(,)?) => {{
        const _: () = ::core::assert!(
            $crate::__private::is_snake_case($name),
            "observe: event names are snake_case, like \"payment_failed\""
        );
        $crate::__private::tracing::event!($level, event = $name)
    }};
    ($level:expr, $name:literal, $($rest:tt)+) => {{
        const _: () = ::core::assert!(
            $crate::__private::is_snake_case($name),
            "observe: event names are snake_case, like \"payment_failed\""
        );
        $crate::__private::tracing::event!($level, event = $name, $($rest)+)
    }};
    ($($other:tt)*) => {
        ::core::compile_error!(
            "observe: the event name comes first, as a string literal: observe::info!(\"payment_failed\", order_id = %id)"
        )
    };
}

macro_rules! level_macro {
    ($(#[$doc:meta])* $name:ident, $dollar:tt, $level:ident) => {
        $(#[$doc])*
        #[macro_export]
        macro_rules! $name {
            ($dollar($dollar rest:tt)*) => {
                $crate::event!($crate::__private::tracing::Level::$level, $dollar($dollar rest)*)
            };
        }
    };
}

level_macro!(
    /// Logs an ERROR event: `observe::error!("payment_failed", order_id = %id, gateway_status_code = 504)`.
    ///
    /// ```
    /// # let (_, cap) = observe_core::testing::capture(|| {
    /// let id = "ord_123";
    /// observe_core::error!("payment_failed", order_id = %id, gateway_status_code = 504);
    /// # });
    /// # assert_eq!(cap.lines[0]["level"], "ERROR");
    /// # assert_eq!(cap.lines[0]["gateway_status_code"], 504);
    /// ```
    error, $, ERROR
);
level_macro!(
    /// Logs a WARN event with a mandatory snake_case event name.
    warn, $, WARN
);
level_macro!(
    /// Logs an INFO event with a mandatory snake_case event name.
    info, $, INFO
);
level_macro!(
    /// Logs a DEBUG event with a mandatory snake_case event name.
    debug, $, DEBUG
);
level_macro!(
    /// Logs a TRACE event with a mandatory snake_case event name.
    trace, $, TRACE
);

#[cfg(test)]
mod tests {
    use super::is_snake_case;

    #[test]
    fn snake_case_rules() {
        for ok in ["payment_failed", "a", "http_5xx", "x1_y2"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in [
            "",
            "PaymentFailed",
            "payment-failed",
            "_x",
            "x_",
            "a__b",
            "1abc",
            "payment failed",
        ] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }
}
