//! The gRPC instruments: `rpc.server.call.duration`,
//! `observe.rpc.server.active_calls` and `rpc.client.call.duration`
//! (semantic conventions v1.44.0 names, units and attributes), and the
//! masked-failure count of a gRPC method. Gateway calls made over gRPC
//! record [`Signals::gateway_call`] like HTTP ones.

use super::{keys, kv, names, Builders, Signals, SpanIds, StackAttrs};
use crate::classify::grpc::GrpcCode;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::KeyValue;
use std::borrow::Cow;

/// `rpc.system.name` of every gRPC measurement.
const GRPC: &str = "grpc";

#[derive(Debug)]
pub(super) struct RpcInstruments {
    server_duration: Histogram<f64>,
    server_active: UpDownCounter<i64>,
    client_duration: Histogram<f64>,
}

impl RpcInstruments {
    pub(super) fn new(b: &Builders<'_>) -> Self {
        RpcInstruments {
            server_duration: b.histogram(names::row_of!(names::RPC_SERVER_CALL_DURATION)),
            server_active: b.i64_up_down(names::row_of!(names::RPC_SERVER_ACTIVE_CALLS)),
            client_duration: b.histogram(names::row_of!(names::RPC_CLIENT_CALL_DURATION)),
        }
    }
}

impl Signals {
    /// One finished gRPC server call: `method` is the full method name
    /// (`package.Service/Method`, or `_OTHER`), `status` the code answered
    /// (`None` when none was: a panic, a dropped stream), `error_type` set
    /// only when the call failed.
    // One flat call per request on the hot path: no intermediate struct.
    #[allow(clippy::too_many_arguments)]
    pub fn rpc_server_call(
        &self,
        method: Cow<'static, str>,
        status: Option<GrpcCode>,
        error_type: Option<Cow<'static, str>>,
        synthetic: bool,
        seconds: f64,
        ids: SpanIds,
    ) {
        let mut attrs = StackAttrs::<5>::new();
        attrs.push(KeyValue::new(keys::RPC_SYSTEM_NAME, GRPC));
        attrs.push(kv(keys::RPC_METHOD, method));
        status_and_error(&mut attrs, status, error_type);
        if synthetic && self.mark_synthetic {
            attrs.push(KeyValue::new(keys::SYNTHETIC, "true"));
        }
        let attrs = attrs.as_slice();
        self.rpc.server_duration.record(seconds, attrs);
        self.exemplar(names::RPC_SERVER_CALL_DURATION, attrs, seconds, ids);
    }

    /// A gRPC server call started (`+1`) or ended (`-1`).
    pub fn rpc_server_active(&self, method: Cow<'static, str>, delta: i64) {
        self.rpc.server_active.add(
            delta,
            &[
                KeyValue::new(keys::RPC_SYSTEM_NAME, GRPC),
                kv(keys::RPC_METHOD, method),
            ],
        );
    }

    /// One finished gRPC client call; `server_address` when known, `gateway`
    /// when the channel is one.
    #[allow(clippy::too_many_arguments)]
    pub fn rpc_client_call(
        &self,
        method: Cow<'static, str>,
        server_address: Option<Cow<'static, str>>,
        status: Option<GrpcCode>,
        error_type: Option<Cow<'static, str>>,
        gateway: Option<Cow<'static, str>>,
        seconds: f64,
        ids: SpanIds,
    ) {
        let mut attrs = StackAttrs::<6>::new();
        attrs.push(KeyValue::new(keys::RPC_SYSTEM_NAME, GRPC));
        attrs.push(kv(keys::RPC_METHOD, method));
        if let Some(a) = server_address {
            attrs.push(kv(keys::SERVER_ADDRESS, a));
        }
        status_and_error(&mut attrs, status, error_type);
        if let Some(g) = gateway {
            attrs.push(kv(keys::GATEWAY, g));
        }
        let attrs = attrs.as_slice();
        self.rpc.client_duration.record(seconds, attrs);
        self.exemplar(names::RPC_CLIENT_CALL_DURATION, attrs, seconds, ids);
    }

    /// A gRPC call answered `OK` although `gateway` failed inside it
    /// (`observe.masked_failures` with `rpc.method` instead of `http.route`).
    pub fn masked_rpc_failure(&self, method: Cow<'static, str>, gateway: Cow<'static, str>) {
        self.masked.add(
            1,
            &[kv(keys::RPC_METHOD, method), kv(keys::GATEWAY, gateway)],
        );
    }
}

/// `rpc.response.status_code` and `error.type`, each when known.
fn status_and_error<const N: usize>(
    attrs: &mut StackAttrs<N>,
    status: Option<GrpcCode>,
    error_type: Option<Cow<'static, str>>,
) {
    if let Some(c) = status {
        attrs.push(KeyValue::new(keys::RPC_RESPONSE_STATUS_CODE, c.as_str()));
    }
    if let Some(e) = error_type {
        attrs.push(kv(keys::ERROR_TYPE, e));
    }
}
