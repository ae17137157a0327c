// Is a host name this machine? Decides between an in-process proxy and a remote launch.
import os from 'node:os';

export function localNames(hostname = os.hostname()): Set<string> {
  const short = hostname.split('.')[0] ?? hostname;
  return new Set(['localhost', '127.0.0.1', '::1', 'localhost.localdomain', hostname, short]);
}

export function isLocalHost(name: string, names: Set<string> = localNames()): boolean {
  return names.has(name) || names.has(name.split('.')[0] ?? name);
}
