//! Several writers at once, each on its own file.

use std::fs::{self, File};
use std::io::Write;

use crate::support::*;

#[test]
fn four_writers_in_parallel() {
    let fx = mounted(|_| {});
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 32;
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let path = fx.path(&format!("w{t}"));
            s.spawn(move || {
                let mut f = File::create(&path).unwrap();
                for i in 0..CHUNKS {
                    f.write_all(&vec![t.wrapping_mul(31).wrapping_add(i as u8); CHUNK])
                        .unwrap();
                    if i % 8 == 7 {
                        f.sync_data().unwrap();
                    }
                }
                f.sync_all().unwrap();
            });
        }
    });
    let ops = fx.ops_settled();
    assert!(open_handles(&ops).is_empty());
    for t in 0..4u8 {
        let data = fs::read(fx.path(&format!("w{t}"))).unwrap();
        assert_eq!(data.len(), CHUNK * CHUNKS);
        // The stream carries the same bytes, in file order, for each writer's handle.
        let h = handle_of(&ops, &format!("w{t}"));
        let mut streamed = Vec::new();
        for (offset, chunk) in writes(&ops, h) {
            assert_eq!(offset as usize, streamed.len(), "out of order on w{t}");
            streamed.extend_from_slice(&chunk);
        }
        assert!(streamed == data, "stream differs from the file for w{t}");
    }
}
