//! Leases: the coordinator signs (lease id, worker id, expiry) with a key it
//! shares with that worker only, over the worker's session. The worker checks
//! the signature and the expiry locally, so a client cannot forge a lease or
//! reuse one on another worker, and no extra round trip is needed.

use crate::v1::Lease;

/// Length of a lease signing key.
pub const KEY_LEN: usize = 32;

fn mac(key: &[u8; KEY_LEN], id: u64, worker_id: u64, expires_unix_ms: u64) -> blake3::Hash {
    let mut msg = [0u8; 24];
    msg[..8].copy_from_slice(&id.to_le_bytes());
    msg[8..16].copy_from_slice(&worker_id.to_le_bytes());
    msg[16..].copy_from_slice(&expires_unix_ms.to_le_bytes());
    blake3::keyed_hash(key, &msg)
}

/// Builds a signed lease.
pub fn sign(key: &[u8; KEY_LEN], id: u64, worker_id: u64, expires_unix_ms: u64) -> Lease {
    Lease {
        id,
        worker_id,
        expires_unix_ms,
        mac: mac(key, id, worker_id, expires_unix_ms).as_bytes().to_vec(),
    }
}

/// Whether `given` is the MAC `issued` for a lease: what proves a client
/// holds the lease (only its holder was given the MAC). Constant-time.
pub fn same_mac(issued: &[u8], given: &[u8]) -> bool {
    match (<[u8; 32]>::try_from(issued), <[u8; 32]>::try_from(given)) {
        // blake3::Hash's equality is constant-time.
        (Ok(a), Ok(b)) => blake3::Hash::from(a) == blake3::Hash::from(b),
        _ => false,
    }
}

/// Why a lease was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("lease signature is invalid")]
    BadSignature,
    #[error("lease is for worker {lease} but this is worker {this}")]
    WrongWorker { lease: u64, this: u64 },
    #[error("lease expired")]
    Expired,
}

/// Checks a lease for this worker at time `now_unix_ms`.
pub fn verify(
    key: &[u8; KEY_LEN],
    worker_id: u64,
    lease: &Lease,
    now_unix_ms: u64,
) -> Result<(), LeaseError> {
    let Ok(given) = <[u8; 32]>::try_from(lease.mac.as_slice()) else {
        return Err(LeaseError::BadSignature);
    };
    // blake3::Hash's equality is constant-time.
    if mac(key, lease.id, lease.worker_id, lease.expires_unix_ms) != blake3::Hash::from(given) {
        return Err(LeaseError::BadSignature);
    }
    if lease.worker_id != worker_id {
        return Err(LeaseError::WrongWorker {
            lease: lease.worker_id,
            this: worker_id,
        });
    }
    if lease.expires_unix_ms < now_unix_ms {
        return Err(LeaseError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];

    #[test]
    fn accepts_own_fresh_lease() {
        let lease = sign(&KEY, 1, 2, 1000);
        assert_eq!(verify(&KEY, 2, &lease, 999), Ok(()));
    }

    #[test]
    fn refuses_forged_foreign_and_expired_leases() {
        let lease = sign(&KEY, 1, 2, 1000);
        assert_eq!(
            verify(&[8; KEY_LEN], 2, &lease, 0),
            Err(LeaseError::BadSignature)
        );
        let mut tampered = lease.clone();
        tampered.expires_unix_ms = 5000;
        assert_eq!(verify(&KEY, 2, &tampered, 0), Err(LeaseError::BadSignature));
        assert_eq!(
            verify(&KEY, 3, &lease, 0),
            Err(LeaseError::WrongWorker { lease: 2, this: 3 })
        );
        assert_eq!(verify(&KEY, 2, &lease, 1001), Err(LeaseError::Expired));
        let short = Lease {
            mac: vec![1, 2],
            ..lease
        };
        assert_eq!(verify(&KEY, 2, &short, 0), Err(LeaseError::BadSignature));
    }
}
