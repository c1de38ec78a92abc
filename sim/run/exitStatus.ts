// Goal: the exit statuses of a payfleet run, in one place, for both modes and the CLI.
// Method: plain constants below sim/cli and sim/mqtt, so the mqtt runner and the commands share them without
// sim/mqtt importing sim/cli.

export const EXIT_OK = 0;
/** An invariant was violated, or a backlog did not drain within the drain time. */
export const EXIT_VIOLATION = 1;
/** Bad input: a bad flag or scenario; nothing was run and nothing written. */
export const EXIT_BAD_INPUT = 2;
/** The test bed failed, not the system: an mqtt run whose fleet could not be hosted (an endpoint never connected). */
export const EXIT_ENVIRONMENT = 3;
/** k6's convention: the run completed but a threshold (SLO) failed. */
export const EXIT_THRESHOLD = 99;
