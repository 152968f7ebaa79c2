//! Target `wire`: the first byte picks a message type (its value modulo
//! [`TYPES`]), the rest is decoded as that message. Properties: decoding
//! gives a message or an error, and a message that decodes re-encodes to
//! bytes that decode to the same encoding.

use gridcc_proto::v1;
use prost::Message;

/// The messages in the order the first byte picks them.
pub const TYPES: &[&str] = &[
    "WorkerMessage",
    "CoordinatorMessage",
    "AssignRequest",
    "AssignReply",
    "ReleaseRequest",
    "ReleaseReply",
    "StatusRequest",
    "StatusReply",
    "CompileRequest",
    "CompileResponse",
];

fn stable<M: Message + Default>(bytes: &[u8]) {
    if let Ok(m) = M::decode(bytes) {
        let once = m.encode_to_vec();
        let again = M::decode(once.as_slice()).expect("an encoding must decode");
        assert_eq!(again.encode_to_vec(), once, "unstable encoding");
    }
}

pub fn run(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match usize::from(kind) % TYPES.len() {
        0 => stable::<v1::WorkerMessage>(bytes),
        1 => stable::<v1::CoordinatorMessage>(bytes),
        2 => stable::<v1::AssignRequest>(bytes),
        3 => stable::<v1::AssignReply>(bytes),
        4 => stable::<v1::ReleaseRequest>(bytes),
        5 => stable::<v1::ReleaseReply>(bytes),
        6 => stable::<v1::StatusRequest>(bytes),
        7 => stable::<v1::StatusReply>(bytes),
        8 => stable::<v1::CompileRequest>(bytes),
        _ => stable::<v1::CompileResponse>(bytes),
    }
}
