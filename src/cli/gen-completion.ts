// Writes a shell completion script to stdout: `node dist/cli/gen-completion.js bash|zsh` (after tsc).
import { renderBashCompletion, renderZshCompletion } from './completion.js';

const shell = process.argv[2];
if (shell === 'bash') process.stdout.write(renderBashCompletion());
else if (shell === 'zsh') process.stdout.write(renderZshCompletion());
else {
  process.stderr.write('usage: node dist/cli/gen-completion.js bash|zsh\n');
  process.exitCode = 2;
}
