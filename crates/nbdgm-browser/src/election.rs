//! Election criteria and state machine (MS-BRWS §3.3.5.8–§3.3.5.9; DIGEST §6.4).
