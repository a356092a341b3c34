//! Announcement timers (MS-BRWS §3.2.6, §3.3.6; DIGEST §6.5).
