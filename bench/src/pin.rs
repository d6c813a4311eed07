//! `--pin`: the server under test on CPU 0, the load generator on every other CPU.
//!
//! Unpinned, the server and the load generator share every core, so a figure such as a p99
//! latency measures how often the scheduler ran one of the bench's readers in the server's
//! place as much as it measures the server. Pinned, each has its own core(s) — the way the
//! figures in the project's PERFORMANCE.md were taken. Both targets get the same treatment.

use std::io;

/// The CPU the server processes run on.
pub const SERVER_CPU: usize = 0;

/// The CPUs of this machine (ignoring any affinity this process was started with).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// The load generator's CPUs: every one but the server's.
pub fn bench_cpus() -> Vec<usize> {
    (0..online_cpus()).filter(|&c| c != SERVER_CPU).collect()
}

/// Restrict the calling thread (and every thread or process it creates later) to `cpus`.
pub fn restrict_to(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `set` is a plain bit set owned by this frame; CPU_SET stays inside it for every
    // index below CPU_SETSIZE, which `online_cpus` cannot exceed on Linux.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Make `command`'s process run on the server's CPU only.
pub fn server_process(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes one system call
    // (no allocation, no locks).
    unsafe {
        command.pre_exec(|| restrict_to(&[SERVER_CPU]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_never_gets_the_server_cpu() {
        assert!(!bench_cpus().contains(&SERVER_CPU));
        assert_eq!(bench_cpus().len(), online_cpus() - 1);
    }
}
