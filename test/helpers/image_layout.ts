/**
 * A parse-level model of the image the Dockerfile builds, for tests on a
 * machine without Docker: which paths exist in each stage, mapped to where
 * their content is here. COPY maps build-context paths (the repository) and
 * other stages' paths; the few RUN commands the Dockerfile uses are modelled by
 * what they make (`npm ci` the packages, `npm run build` the compiled tree,
 * `mkdir`, `useradd`, `chown`); a RUN the model does not know is an error, so
 * the model cannot silently drift from the Dockerfile.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';

export interface Instruction {
  keyword: string;
  /** The text after the keyword, continuation lines joined. */
  rest: string;
  line: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (line.trim().startsWith('#') || (pending === '' && line.trim() === '')) return;
    if (pending === '') startLine = i + 1;
    const continued = line.endsWith('\\');
    pending += (pending === '' ? '' : ' ') + (continued ? line.slice(0, -1) : line).trim();
    if (continued) return;
    const m = /^(\S+)\s*(.*)$/s.exec(pending)!;
    out.push({ keyword: m[1]!.toUpperCase(), rest: m[2]!, line: startLine });
    pending = '';
  });
  if (pending !== '') throw new Error(`Dockerfile ends inside a continued line (line ${startLine})`);
  return out;
}

/** An exec-form array (`["node", "x.js"]`), or a shell-form string split on white space. */
export function commandWords(rest: string): string[] {
  if (rest.trimStart().startsWith('[')) return JSON.parse(rest) as string[];
  return rest.trim().split(/\s+/);
}

/** Where a path of the image comes from here: a file or directory of this machine. */
interface Mount {
  imagePath: string;
  local: string;
}

export interface Stage {
  name: string | undefined;
  base: string;
  workdir: string;
  env: Record<string, string>;
  user: string | undefined;
  users: Map<string, { uid: number; group: string }>;
  groups: Map<string, number>;
  /** Directories that mkdir or WORKDIR made, and what chown gave to whom. */
  dirs: Set<string>;
  owners: Map<string, string>;
  volumes: string[];
  exposed: number[];
  healthcheck: { options: Record<string, string>; command: string[] } | undefined;
  entrypoint: string[];
  cmd: string[];
  mounts: Mount[];
  /** Build-context sources COPY named, relative to the context. */
  contextSources: string[];
}

export interface BuildContext {
  /** The repository (the build context). */
  root: string;
  /** Where `npm run build` output is here (the compiled tree the tests run from). */
  compiled: string;
}

export class ImageLayout {
  readonly stages: Stage[] = [];

  constructor(
    readonly instructions: Instruction[],
    private readonly context: BuildContext,
  ) {
    for (const ins of instructions) this.apply(ins);
    if (this.stages.length === 0) throw new Error('the Dockerfile has no FROM');
  }

  get final(): Stage {
    return this.stages.at(-1)!;
  }

  /** True when `imagePath` exists in `stage` (default: the image). */
  exists(imagePath: string, stage: Stage = this.final): boolean {
    if (stage.dirs.has(imagePath)) return true;
    const local = this.localPath(imagePath, stage);
    return local !== undefined && existsSync(local);
  }

  /** Where the content of `imagePath` is here, if some COPY or modelled RUN put it in the stage. */
  localPath(imagePath: string, stage: Stage = this.final): string | undefined {
    let best: Mount | undefined;
    for (const m of stage.mounts) {
      if ((imagePath === m.imagePath || imagePath.startsWith(`${m.imagePath}/`)) && (!best || m.imagePath.length > best.imagePath.length)) best = m;
    }
    return best && join(best.local, imagePath.slice(best.imagePath.length));
  }

  /**
   * Follows the static and dynamic imports of a JavaScript file of the image:
   * every relative import must exist in the image, every package must be a
   * production dependency present in the image. Returns the problems found.
   */
  importProblems(entry: string, packageJson: { dependencies?: Record<string, string> }, nodeModules: string): string[] {
    const problems: string[] = [];
    const seen = new Set<string>();
    const queue = [entry];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const local = this.localPath(file);
      if (local === undefined || !existsSync(local) || !statSync(local).isFile()) {
        problems.push(`${file} is not in the image`);
        continue;
      }
      for (const spec of importSpecifiers(readFileSync(local, 'utf8'))) {
        if (spec.startsWith('.')) {
          queue.push(posix.join(posix.dirname(file), spec));
        } else if (!isBuiltin(spec)) {
          const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (packageJson.dependencies?.[pkg] === undefined) problems.push(`${file} imports ${pkg}, which is not a production dependency (npm prune --omit=dev removes it)`);
          else if (!this.exists(posix.join(nodeModules, pkg, 'package.json'))) problems.push(`${file} imports ${pkg}, which is not in ${nodeModules}`);
        }
      }
    }
    return problems;
  }

  private get current(): Stage {
    const stage = this.stages.at(-1);
    if (!stage) throw new Error('an instruction before the first FROM');
    return stage;
  }

  private apply(ins: Instruction): void {
    const where = `Dockerfile line ${ins.line}`;
    switch (ins.keyword) {
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.rest);
        if (!m) throw new Error(`${where}: cannot read FROM ${ins.rest}`);
        this.stages.push({
          name: m[2], base: m[1]!, workdir: '/', env: {}, user: undefined, users: new Map(), groups: new Map(), dirs: new Set(['/']),
          owners: new Map(), volumes: [], exposed: [], healthcheck: undefined, entrypoint: [], cmd: [], mounts: [], contextSources: [],
        });
        return;
      }
      case 'WORKDIR':
        this.current.workdir = posix.resolve(this.current.workdir, ins.rest.trim());
        this.current.dirs.add(this.current.workdir);
        return;
      case 'ENV':
        for (const [, k, v] of ins.rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)) this.current.env[k!] = v!.replace(/^"|"$/g, '');
        return;
      case 'USER':
        this.current.user = ins.rest.trim();
        return;
      case 'VOLUME':
        this.current.volumes.push(...commandWords(ins.rest));
        return;
      case 'EXPOSE':
        this.current.exposed.push(...ins.rest.trim().split(/\s+/).map((p) => Number(p.split('/')[0])));
        return;
      case 'HEALTHCHECK': {
        const m = /^((?:--\S+=\S+\s+)*)CMD\s+(.*)$/s.exec(ins.rest);
        if (!m) throw new Error(`${where}: cannot read HEALTHCHECK ${ins.rest}`);
        const options = Object.fromEntries([...m[1]!.matchAll(/--(\S+?)=(\S+)/g)].map(([, k, v]) => [k!, v!]));
        this.current.healthcheck = { options, command: commandWords(m[2]!) };
        return;
      }
      case 'ENTRYPOINT':
        this.current.entrypoint = commandWords(ins.rest);
        return;
      case 'CMD':
        this.current.cmd = commandWords(ins.rest);
        return;
      case 'COPY':
        this.copy(ins.rest, where);
        return;
      case 'RUN':
        for (const command of ins.rest.split(/\s*&&\s*/)) this.run(command.trim(), where);
        return;
      case 'ARG':
      case 'LABEL':
        return;
      default:
        throw new Error(`${where}: the layout model does not know ${ins.keyword}`);
    }
  }

  private copy(rest: string, where: string): void {
    const words = rest.trim().split(/\s+/);
    const flags = Object.fromEntries(words.filter((w) => w.startsWith('--')).map((w) => w.slice(2).split('=') as [string, string]));
    const paths = words.filter((w) => !w.startsWith('--'));
    const dest = posix.resolve(this.current.workdir, paths.at(-1)!);
    const sources = paths.slice(0, -1);
    if (sources.length === 0) throw new Error(`${where}: COPY without a source`);
    const intoDir = sources.length > 1 || paths.at(-1)!.endsWith('/');
    for (const src of sources) {
      let local: string | undefined;
      if (flags['from'] !== undefined) {
        const from = this.stages.find((s) => s.name === flags['from']);
        if (!from) throw new Error(`${where}: COPY --from=${flags['from']} names no earlier stage`);
        const path = posix.resolve(from.workdir, src);
        if (!this.exists(path, from)) throw new Error(`${where}: COPY --from=${flags['from']} ${path}: not in that stage`);
        local = this.localPath(path, from);
      } else {
        this.current.contextSources.push(src);
        local = join(this.context.root, src);
        if (!existsSync(local)) throw new Error(`${where}: COPY ${src}: not in the build context`);
      }
      const isDir = local !== undefined && statSync(local).isDirectory();
      const target = intoDir && !isDir ? posix.join(dest, posix.basename(src)) : dest;
      if (local !== undefined) this.current.mounts.push({ imagePath: target, local });
    }
  }

  /** What one shell command of a RUN makes; unknown commands are errors (see the header). */
  private run(command: string, where: string): void {
    const stage = this.current;
    const words = command.split(/\s+/);
    const at = (p: string) => posix.resolve(stage.workdir, p);
    const need = (p: string) => {
      if (!this.exists(at(p), stage)) throw new Error(`${where}: ${command} needs ${at(p)}, which the stage does not have`);
    };
    if (/^npm ci\b/.test(command)) {
      need('package.json');
      need('package-lock.json');
      stage.mounts.push({ imagePath: at('node_modules'), local: join(this.context.root, 'node_modules') });
    } else if (command === 'npm run build') {
      const script = (JSON.parse(readFileSync(this.localPath(at('package.json'), stage)!, 'utf8')) as { scripts?: Record<string, string> }).scripts?.['build'];
      if (script !== 'tsc -p tsconfig.json') throw new Error(`${where}: the model knows "build": "tsc -p tsconfig.json", not ${JSON.stringify(script)}`);
      need('tsconfig.json');
      need('src');
      need('node_modules/typescript');
      const outDir = (JSON.parse(readFileSync(this.localPath(at('tsconfig.json'), stage)!, 'utf8')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
      stage.mounts.push({ imagePath: at(outDir), local: this.context.compiled });
    } else if (/^npm prune --omit=dev\b/.test(command)) {
      need('node_modules'); // removes the dev packages: importProblems checks nothing needs them
    } else if (words[0] === 'groupadd') {
      stage.groups.set(words.at(-1)!, Number(option(words, '--gid')));
    } else if (words[0] === 'useradd') {
      stage.users.set(words.at(-1)!, { uid: Number(option(words, '--uid')), group: option(words, '--gid') ?? words.at(-1)! });
    } else if (words[0] === 'mkdir') {
      for (const p of words.slice(1).filter((w) => !w.startsWith('-'))) stage.dirs.add(at(p));
    } else if (words[0] === 'chown') {
      const [owner, ...targets] = words.slice(1).filter((w) => !w.startsWith('-'));
      for (const p of targets) stage.owners.set(at(p), owner!);
    } else {
      throw new Error(`${where}: the layout model does not know what \`${command}\` makes; teach test/helpers/image_layout.ts`);
    }
  }
}

function option(words: string[], name: string): string | undefined {
  const i = words.indexOf(name);
  return i >= 0 ? words[i + 1] : undefined;
}

/** The module specifiers a compiled file imports: `import … from 'x'`, `import 'x'`, `import('x')`, `export … from 'x'`. */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

function isBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!);
}
