// Usage examples shared by --help (the first three) and the man page's EXAMPLES section (all of them),
// so the two cannot tell different stories.

export interface Example {
  title: string;
  /** Shell lines; `#` lines are comments or batch directives. */
  lines: readonly string[];
  inHelp: boolean;
}

export const EXAMPLES: readonly Example[] = [
  {
    title: 'On a login node, with a host file (check the placement first):',
    lines: ['tsmpiexec --dry-run -f hosts.txt -n 16 ./solver input.dat', 'tsmpiexec -f hosts.txt -n 16 ./solver input.dat'],
    inHelp: true,
  },
  {
    title: 'Inside an sbatch script (hosts and launcher come from Slurm):',
    lines: ['#SBATCH --nodes=2 --ntasks-per-node=4', 'tsmpiexec ./solver input.dat'],
    inHelp: true,
  },
  {
    title: 'In a CI smoke run (bounded in time, no stdin, labelled output):',
    lines: ['tsmpiexec -n 2 -timeout 120 --stdin none -l ./hello'],
    inHelp: true,
  },
  {
    title: 'In an HTCondor job that asked for request_cpus = 4 (all ranks on the execute node):',
    lines: ['tsmpiexec -launcher fork -n 4 ./solver input.dat'],
    inHelp: false,
  },
  {
    title: 'MPMD: one coordinator and eight workers, with a variable for the workers only:',
    lines: ['tsmpiexec -n 1 ./coord : -n 8 -env ROLE worker ./work'],
    inHelp: false,
  },
];
