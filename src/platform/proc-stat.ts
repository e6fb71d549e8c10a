/**
 * The fields of a `/proc/<pid>/stat` line after the process name: state, ppid, pgrp, session,
 * tty_nr, ... (index 0 is the state). The name is the executable's, which anyone may choose, and
 * may hold spaces and ") " itself: the fields start after its last ')'.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
