//! How a viewer's output becomes WebSocket frames: queued output joined into few frames, large
//! replays cut into frames of a bounded size, and a snapshot as its control message and bytes.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

use crate::actors::viewers::Outbound;
use crate::protocol::Control;

/// Output frames are coalesced from what is already queued, up to this size (never waited for).
const FRAME_MAX_BYTES: usize = 256 * 1024;

/// The `snapshot` message and the screen's bytes as one binary frame (a client counts offsets
/// from the frame after it).
pub fn snapshot_frames(snapshot: crate::screen::Snapshot) -> impl Iterator<Item = Message> {
    let hello = Control::Snapshot {
        offset: snapshot.offset,
        cols: snapshot.cols,
        rows: snapshot.rows,
    };
    [
        Message::text(hello.to_text()),
        Message::binary(snapshot.bytes),
    ]
    .into_iter()
}

/// Queue items as frames: consecutive output is joined (up to [`FRAME_MAX_BYTES`]) so a burst
/// of small reads costs one frame, not one each.
pub fn frames(items: Vec<Outbound>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut single: Option<Bytes> = None;
    let flush = |out: &mut Vec<Message>, pending: &mut Vec<u8>, single: &mut Option<Bytes>| {
        if let Some(b) = single.take() {
            out.push(Message::binary(b));
        } else if !pending.is_empty() {
            out.push(Message::binary(std::mem::take(pending)));
        }
    };
    for item in items {
        match item {
            Outbound::Data(bytes) => {
                let held = single.as_ref().map_or(pending.len(), Bytes::len);
                if held + bytes.len() > FRAME_MAX_BYTES {
                    flush(&mut out, &mut pending, &mut single);
                }
                if let Some(b) = single.take() {
                    pending.extend_from_slice(&b);
                    pending.extend_from_slice(&bytes);
                } else if pending.is_empty() {
                    // The common case (one read): send the shared bytes without copying.
                    single = Some(bytes);
                } else {
                    pending.extend_from_slice(&bytes);
                }
            }
            Outbound::Text(text) => {
                flush(&mut out, &mut pending, &mut single);
                out.push(Message::text(text));
            }
        }
    }
    flush(&mut out, &mut pending, &mut single);
    out
}

/// Ring bytes that start at offset `start` as binary frames, with each `resize` message of
/// `sizes` before the byte at its offset: the output before a resize is drawn at the size it
/// was printed at.
pub fn replay_frames(
    start: u64,
    mut bytes: Bytes,
    sizes: crate::actors::terminal::ReplaySizes,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut at = start;
    for (offset, text) in sizes {
        let before = usize::try_from(offset.saturating_sub(at)).unwrap_or(usize::MAX);
        let part = bytes.split_to(before.min(bytes.len()));
        at += part.len() as u64;
        out.extend(chunks(part).map(Message::binary));
        out.push(Message::text(text));
    }
    out.extend(chunks(bytes).map(Message::binary));
    out
}

pub fn chunks(bytes: Bytes) -> impl Iterator<Item = Bytes> {
    let n = bytes.len().div_ceil(FRAME_MAX_BYTES);
    (0..n).map(move |i| {
        bytes.slice(i * FRAME_MAX_BYTES..((i + 1) * FRAME_MAX_BYTES).min(bytes.len()))
    })
}
