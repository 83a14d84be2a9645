//! Thrift: Go kit's `AddService`, `Sum` and `Concat`, served with kit-core's Thrift server.

use std::sync::Arc;

use kit_core::endpoint::EndpointExt;
use kit_core::log::Logger;
use kit_core::transport::thrift::application_error;
use tokio::runtime::Handle;

use crate::endpoint::{ConcatRequest, Set, SumRequest};
use crate::service::ServiceError;

/// The code the Thrift compiler generated from `thrift/addsvc.thrift` (`scripts/thrift-gen`
/// regenerates it): the reply structs, the processor and its handler trait, the client.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    dead_code,
    clippy::all,
    // Generated: each unwrap follows its is_some check.
    clippy::unwrap_used
)]
pub mod addsvc;

use addsvc::{AddServiceSyncHandler, ConcatReply, SumReply, TAddServiceProcessFunctions};
use thrift::protocol::{TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol, TType};
use thrift::server::TProcessor;
use thrift::{ApplicationError, ApplicationErrorKind};

// ANCHOR: handler
/// The generated handler trait, implemented by the endpoints. Thrift calls it on a
/// connection's own thread, from which it waits for the endpoint on the async runtime.
#[derive(Debug, Clone)]
pub struct Handler {
    set: Set,
    runtime: Handle,
    logger: Logger,
}

impl AddServiceSyncHandler for Handler {
    fn handle_sum(&self, a: i64, b: i64) -> thrift::Result<SumReply> {
        match self
            .runtime
            .block_on(self.set.sum.invoke(SumRequest { a, b }))
        {
            Ok(response) => Ok(SumReply::new(response.v, reply_err(response.err))),
            Err(err) => Err(self.failed("Sum", err)),
        }
    }

    fn handle_concat(&self, a: String, b: String) -> thrift::Result<ConcatReply> {
        match self
            .runtime
            .block_on(self.set.concat.invoke(ConcatRequest { a, b }))
        {
            Ok(response) => Ok(ConcatReply::new(response.v, reply_err(response.err))),
            Err(err) => Err(self.failed("Concat", err)),
        }
    }
}

impl Handler {
    /// A failed call: logged, and answered with Thrift's `INTERNAL_ERROR` exception.
    fn failed(&self, method: &str, err: kit_core::BoxError) -> thrift::Error {
        self.logger
            .in_scope(|| tracing::warn!(transport = "Thrift", method, err = %err));
        application_error(method, err.as_ref())
    }
}

/// The reply's `err`: the business error's message, or empty, as Go kit writes it.
fn reply_err(err: Option<ServiceError>) -> String {
    err.map(|e| e.to_string()).unwrap_or_default()
}

/// The processor that answers `AddService` calls with `set`. Must be made on the async runtime,
/// which the handler waits on.
pub fn processor(set: &Set, logger: &Logger) -> Arc<Processor> {
    Arc::new(Processor {
        handler: Handler {
            set: set.clone(),
            runtime: Handle::current(),
            logger: logger.clone(),
        },
    })
}
// ANCHOR_END: handler

// ANCHOR: processor
/// Dispatches each call to the generated functions of its method, as the generated processor
/// does, with two differences that keep a connection's byte stream in step: a call of an
/// unknown method has its arguments skipped before the `UNKNOWN_METHOD` exception is answered
/// (`Unknown function Nope`, as Go's processors say), and a call whose arguments cannot be read
/// ends the connection, rather than being answered as if the rest of the stream still made
/// sense.
#[derive(Debug, Clone)]
pub struct Processor {
    handler: Handler,
}

impl TProcessor for Processor {
    fn process(
        &self,
        input: &mut dyn TInputProtocol,
        output: &mut dyn TOutputProtocol,
    ) -> thrift::Result<()> {
        let call = input.read_message_begin()?;
        let seq = call.sequence_number;
        match call.name.as_str() {
            "Sum" => TAddServiceProcessFunctions::process_sum(&self.handler, seq, input, output),
            "Concat" => {
                TAddServiceProcessFunctions::process_concat(&self.handler, seq, input, output)
            }
            name => {
                input.skip(TType::Struct)?;
                input.read_message_end()?;
                let error = ApplicationError::new(
                    ApplicationErrorKind::UnknownMethod,
                    format!("Unknown function {name}"),
                );
                let ident = TMessageIdentifier::new(name, TMessageType::Exception, seq);
                output.write_message_begin(&ident)?;
                thrift::Error::write_application_error_to_out_protocol(&error, output)?;
                output.write_message_end()?;
                output.flush()
            }
        }
    }
}
// ANCHOR_END: processor
