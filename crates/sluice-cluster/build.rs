//! Generates the gRPC service of the control plane (client and server) with tonic's
//! manual builder: the messages are written in Rust with prost's derive
//! (`src/rpc/messages.rs`), so no `protoc` is needed to build Sluice.

fn method(name: &str, route: &str, input: &str, output: &str) -> tonic_build::manual::Method {
    tonic_build::manual::Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::rpc::messages::{input}"))
        .output_type(format!("crate::rpc::messages::{output}"))
        .codec_path("tonic_prost::ProstCodec")
        .build()
}

fn main() {
    let commands = tonic_build::manual::Method::builder()
        .name("commands")
        .route_name("Commands")
        .input_type("crate::rpc::messages::CommandsRequest")
        .output_type("crate::rpc::messages::Command")
        .codec_path("tonic_prost::ProstCodec")
        .server_streaming()
        .build();
    let service = tonic_build::manual::Service::builder()
        .name("Coordinator")
        .package("sluice.cluster")
        .method(method(
            "register_worker",
            "RegisterWorker",
            "RegisterWorkerRequest",
            "RegisterWorkerResponse",
        ))
        .method(method(
            "heartbeat",
            "Heartbeat",
            "HeartbeatRequest",
            "HeartbeatResponse",
        ))
        .method(commands)
        .method(method(
            "report_attempt",
            "ReportAttempt",
            "AttemptReport",
            "Empty",
        ))
        .method(method(
            "acknowledge_checkpoint",
            "AcknowledgeCheckpoint",
            "CheckpointAck",
            "Empty",
        ))
        .method(method(
            "task_finished",
            "TaskFinished",
            "TaskFinishedRequest",
            "TaskFinishedResponse",
        ))
        .method(method(
            "submit_job",
            "SubmitJob",
            "SubmitRequest",
            "SubmitResponse",
        ))
        .method(method("list_jobs", "ListJobs", "Empty", "ListJobsResponse"))
        .method(method("cancel_job", "CancelJob", "JobRequest", "Empty"))
        .method(method(
            "trigger_savepoint",
            "TriggerSavepoint",
            "SavepointRequest",
            "SavepointResponse",
        ))
        .build();
    tonic_build::manual::Builder::new().compile(&[service]);
}
