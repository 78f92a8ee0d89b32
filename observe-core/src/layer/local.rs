//! `#[observed]` spans: kept by the call that owns them, outside tracing's
//! registry, and moved onto this thread's frame stack while the call runs.
//!
//! ```text
//!  Call { LocalSpan { state, context } }    owned by the call (stack or future)
//!          │ enter (in_scope / every poll): the state moves onto the frames
//!          ▼                                 and back when the guard drops
//!  frames: [Frame { state, context }, ...]  this thread's running calls
//!          ▲
//!          └── log lines, child spans, current_trace_id(): the innermost
//!              frames whose `context` is tracing's current span come
//!              before tracing's own scope
//! ```
//!
//! A local span records which tracing span was current when it started
//! (`context`). It is innermost only while that tracing span is still the
//! current one: a tracing span entered inside the call (a client span, an
//! `info_span!`) takes over until it exits, and was created as the local
//! span's child with a copy of its fields.

use super::span_state::SpanState;
use std::cell::RefCell;
use std::marker::PhantomData;

/// An `#[observed]` span: observe's state of it (`None` while it is
/// entered: the state is then on this thread's frame stack), and the
/// tracing span it sits in.
pub(crate) struct LocalSpan {
    /// Boxed: entering and leaving move a pointer, not the state.
    state: RefCell<Option<Box<SpanState>>>,
    context: Option<u64>,
}

/// An entered local span.
pub(crate) struct Frame {
    pub(crate) state: Box<SpanState>,
    context: Option<u64>,
}

/// Most frames one lookup returns (deeper ones lend no fields).
pub(crate) const MAX_LOCAL: usize = 8;

/// Most spare span boxes a thread keeps.
const MAX_SPARE: usize = 32;

/// This thread's entered local spans and spare span boxes (one
/// thread-local: a call's start looks at both).
struct Local {
    /// Entered local spans, outermost first.
    frames: Vec<Frame>,
    /// Boxes of ended spans, reset, for the next calls on this thread (the
    /// boxes themselves are what is kept: a call takes one whole).
    #[allow(clippy::vec_box)]
    spare: Vec<Box<SpanState>>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            frames: Vec::new(),
            spare: Vec::new(),
        })
    };
}

/// What a new call needs from this thread, in one look: `f` of the
/// innermost frames in tracing span `current` (as [`with_scope`]), and a
/// fresh span state box (a spare one when this thread has one).
#[inline]
pub(crate) fn begin<R>(current: Option<u64>, f: impl Fn(&[Frame]) -> R) -> (R, Box<SpanState>) {
    let found = LOCAL.try_with(|l| {
        let mut l = l.try_borrow_mut().ok()?;
        let r = f(scope(&mut l.frames, current));
        Some((r, l.spare.pop()))
    });
    let (r, spare) = match found {
        Ok(Some(found)) => found,
        _ => (f(&[]), None),
    };
    (
        r,
        spare.unwrap_or_else(|| Box::new(SpanState::new(0, 0, 0))),
    )
}

/// Keeps the box of an ended span for the next call on this thread.
#[inline]
pub(crate) fn recycle(mut state: Box<SpanState>) {
    if !state.reset() {
        return;
    }
    let _ = LOCAL.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            if l.spare.len() < MAX_SPARE {
                l.spare.push(state);
            }
        }
    });
}

impl LocalSpan {
    /// A span sitting in tracing span `context` (its `Id::into_u64`).
    pub(crate) fn new(state: Box<SpanState>, context: Option<u64>) -> Self {
        LocalSpan {
            state: RefCell::new(Some(state)),
            context,
        }
    }

    /// Runs `f` on the span's state, when it is not entered.
    #[inline]
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
        let mut st = self.state.try_borrow_mut().ok()?;
        st.as_deref_mut().map(f)
    }

    /// The span's state, for its end.
    pub(crate) fn into_state(self) -> Option<Box<SpanState>> {
        self.state.into_inner()
    }
}

/// A local span made current on this thread until the guard drops.
pub(crate) struct Entered<'a> {
    span: &'a LocalSpan,
    /// The span id of the pushed frame (`None`: nothing was pushed).
    pushed: Option<u64>,
    /// Not `Send`: the frame belongs to this thread's stack.
    _thread: PhantomData<*const ()>,
}

/// Makes `span` current on this thread until the guard drops.
#[inline]
pub(crate) fn enter(span: &LocalSpan) -> Entered<'_> {
    let mut pushed = None;
    if let Ok(mut slot) = span.state.try_borrow_mut() {
        if let Some(state) = slot.take() {
            let mut state = Some(state);
            let _ = LOCAL.try_with(|l| {
                let Ok(mut l) = l.try_borrow_mut() else {
                    return;
                };
                if let Some(state) = state.take() {
                    pushed = Some(state.span_id);
                    l.frames.push(Frame {
                        state,
                        context: span.context,
                    });
                }
            });
            // Entered from inside a lookup (a field's Debug impl), or while
            // the thread exits: the span stays where it is, not current.
            if let Some(state) = state {
                *slot = Some(state);
            }
        }
    }
    Entered {
        span,
        pushed,
        _thread: PhantomData,
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(span_id) = self.pushed else { return };
        let frame = LOCAL.try_with(|l| {
            let frames = &mut l.try_borrow_mut().ok()?.frames;
            // Guards drop in reverse order of entry; search if one did not.
            let at = frames.iter().rposition(|fr| fr.state.span_id == span_id)?;
            Some(frames.remove(at))
        });
        if let (Ok(Some(frame)), Ok(mut slot)) = (frame, self.span.state.try_borrow_mut()) {
            *slot = Some(frame.state);
        }
    }
}

/// Runs `f` with the innermost entered frames that sit in tracing span
/// `current` (its `Id::into_u64`), innermost last (at most [`MAX_LOCAL`];
/// empty if none, if the stack is in use further up, or if the thread is
/// exiting).
#[inline]
pub(crate) fn with_scope<R>(current: Option<u64>, mut f: impl FnMut(&mut [Frame]) -> R) -> R {
    let found = LOCAL.try_with(|l| {
        let mut l = l.try_borrow_mut().ok()?;
        Some(f(scope(&mut l.frames, current)))
    });
    match found {
        Ok(Some(r)) => r,
        _ => f(&mut []),
    }
}

/// The innermost frames of `frames` in tracing span `current`.
#[inline]
fn scope(frames: &mut [Frame], current: Option<u64>) -> &mut [Frame] {
    let n = frames
        .iter()
        .rev()
        .take(MAX_LOCAL)
        .take_while(|fr| fr.context == current)
        .count();
    let len = frames.len();
    &mut frames[len - n..]
}

/// Whether any local span is entered on this thread (a cheap check before
/// asking tracing for its current span).
#[inline]
pub(crate) fn any_entered() -> bool {
    LOCAL
        .try_with(|l| l.try_borrow().is_ok_and(|l| !l.frames.is_empty()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u64, context: Option<u64>) -> LocalSpan {
        LocalSpan::new(Box::new(SpanState::new(1, id, 0)), context)
    }

    fn scope_ids(current: Option<u64>) -> Vec<u64> {
        with_scope(current, |frames| {
            frames.iter().rev().map(|f| f.state.span_id).collect()
        })
    }

    #[test]
    fn entered_spans_are_the_scope_of_their_tracing_span_innermost_first() {
        let outer = span(10, Some(7));
        let inner = span(11, Some(7));
        let other = span(12, Some(8));
        assert!(!any_entered());
        {
            let _o = enter(&outer);
            // Entered: the state is on the frame stack, not in the span.
            assert_eq!(outer.with_state(|s| s.span_id), None);
            let _i = enter(&inner);
            assert_eq!(scope_ids(Some(7)), [11, 10]);
            // A call's start sees the same scope.
            let (ids, spare) = begin(Some(7), |frames| {
                frames
                    .iter()
                    .rev()
                    .map(|f| f.state.span_id)
                    .collect::<Vec<_>>()
            });
            assert_eq!((ids, spare.span_id), (vec![11, 10], 0));
            let _x = enter(&other);
            // A call in another tracing span hides the ones below it.
            assert_eq!(scope_ids(Some(8)), [12]);
            assert_eq!(scope_ids(Some(7)), Vec::<u64>::new());
            assert_eq!(scope_ids(None), Vec::<u64>::new());
        }
        assert!(!any_entered());
        for (s, id) in [(&outer, 10), (&inner, 11), (&other, 12)] {
            assert_eq!(s.with_state(|s| s.span_id), Some(id));
        }
    }

    #[test]
    fn guards_dropped_out_of_order_give_each_span_its_own_state() {
        let a = span(1, None);
        let b = span(2, None);
        let ga = enter(&a);
        let gb = enter(&b);
        drop(ga);
        assert_eq!(scope_ids(None), [2]);
        drop(gb);
        assert!(!any_entered());
        assert_eq!(a.with_state(|s| s.span_id), Some(1));
        assert_eq!(b.with_state(|s| s.span_id), Some(2));
    }

    #[test]
    fn entering_from_inside_a_lookup_leaves_the_span_where_it_is() {
        let a = span(1, None);
        let b = span(2, None);
        let _ga = enter(&a);
        with_scope(None, |frames| {
            assert_eq!(frames.len(), 1);
            // The stack is borrowed: `b` stays put and is not current.
            let _gb = enter(&b);
            assert_eq!(b.with_state(|s| s.span_id), Some(2));
        });
        assert_eq!(scope_ids(None), [1]);
    }

    #[test]
    fn recycled_boxes_come_back_fresh() {
        let (_, mut st) = begin(None, |_| ());
        st.trace_id = 9;
        st.span_id = 9;
        st.fields.extend_from_slice(b",\"k\":1");
        st.index.push(("k", 0, 6, 1));
        recycle(st);
        let (_, again) = begin(None, |_| ());
        assert_eq!((again.trace_id, again.span_id), (0, 0));
        assert!(again.fields.is_empty() && again.index.is_empty());
        assert!(again.record.is_none() && again.request.is_none());
    }
}
