// The npm packages loaded on demand (chalk, ora), imported through one function. bin/tsmpiexec.js compiles the
// bundle with a V8 code cache (vm.Script), and on Node 20 an import() inside vm-compiled code needs
// --experimental-vm-modules; so the shim passes its own import() in through setExternalImporter.
export type Importer = (specifier: 'chalk' | 'ora') => Promise<unknown>;

let importer: Importer = (specifier) => import(specifier);

export function setExternalImporter(fn: Importer): void {
  importer = fn;
}

export async function importChalk(): Promise<typeof import('chalk')> {
  return (await importer('chalk')) as typeof import('chalk');
}

export async function importOra(): Promise<typeof import('ora')> {
  return (await importer('ora')) as typeof import('ora');
}
