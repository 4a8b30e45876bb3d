// `tapkit doctor`, `list` and `cleanup` against the real kernel. Every interface is made inside
// network namespaces the test creates; the commands run inside them with `ip netns exec`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createNetns,
  itPrivileged,
  onCleanup,
  stopChild,
  useCleanup,
  type Netns,
} from '@tapkit/test-support';
import { describe, expect } from 'vitest';
import { processStartTicks } from '../src/system/linux.js';
import type { CleanupResult, InterfaceEntry, InterfaceList } from '../src/system/types.js';
import type { DoctorReport } from '../src/doctor.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const holdTap = fileURLToPath(new URL('./fixtures/hold-tap.mjs', import.meta.url));
const attach = fileURLToPath(new URL('./fixtures/attach.py', import.meta.url));
// An unprivileged user: setpriv drops root's capabilities with the uid.
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
useCleanup();

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI (in `ns` when given, as nobody when asked); resolves with its exit code, never rejects. */
function tapkit(
  args: string[],
  options: { ns?: Netns; nobody?: boolean; env?: Record<string, string> } = {},
) {
  const command = [...(options.nobody ? NOBODY : []), process.execPath, cli, ...args];
  const [file, ...rest] = options.ns ? ['ip', 'netns', 'exec', options.ns.name, ...command] : command;
  return new Promise<Run>((resolve) => {
    execFile(
      file!,
      rest,
      { env: { ...process.env, ...options.env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Starts a process in `ns` that prints `ready …` once it holds its device; stopped after the test. */
async function holder(ns: Netns, file: string, args: string[]): Promise<ChildProcess> {
  const child = ns.spawn(file, args);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) resolve();
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) =>
      reject(new Error(`${file} exited (${code}) before it was ready: ${output}`)),
    );
  });
  return child;
}

/** The pid of the process that `ip netns exec` became (it execs, so it is the child's pid). */
const pidOf = (child: ChildProcess) => child.pid!;

describe('tapkit doctor on Linux', () => {
  itPrivileged('says linux-tap works as root, and what to do when it does not', async () => {
    const root = await tapkit(['doctor', '--json']);
    expect(root.code).toBe(0);
    const report = JSON.parse(root.stdout) as DoctorReport;
    expect(report).toMatchObject({ platform: 'linux', uid: 0, selected: 'linux-tap' });
    expect(report.backends.map((b) => [b.name, b.available])).toEqual([
      ['linux-tap', true],
      ['mock', true],
    ]);

    const nobody = await tapkit(['doctor'], { nobody: true });
    expect(nobody.code).toBe(3);
    expect(nobody.stdout).toMatch(/unavailable\s+linux-tap/);
    expect(nobody.stdout).toContain('ERR_TAP_PERMISSION_DENIED');
    expect(nobody.stdout).toContain('setcap cap_net_admin+ep');

    // An addon that cannot be loaded (what node_modules copied from another OS looks like).
    const noAddon = await tapkit(['doctor', '--json'], {
      env: { TAPKIT_LINUX_ADDON: '/nonexistent/addon.node' },
    });
    expect(noAddon.code).toBe(3);
    const linux = (JSON.parse(noAddon.stdout) as DoctorReport).backends[0]!;
    expect(linux).toMatchObject({
      name: 'linux-tap',
      installed: true,
      available: false,
      code: 'ERR_TAP_BACKEND_NOT_INSTALLED',
    });
    expect(linux.fix!.join(' ')).toMatch(/native addon did not load/);

    const forced = await tapkit(['doctor', '--json'], { nobody: true, env: { TAPKIT_BACKEND: 'mock' } });
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ forcedBackend: 'mock', selected: 'mock' });
  });
});

describe('tapkit doctor with a /dev/net/tun of mode 0600', () => {
  /**
   * `tapkit doctor --json` as nobody, with or without CAP_NET_ADMIN, in a mount namespace whose
   * /dev/net/tun is a fresh node of mode 0600 owned by root (whatever the host's is).
   */
  async function doctorAsNobody(withNetAdmin: boolean): Promise<DoctorReport> {
    const caps = withNetAdmin ? ['--inh-caps=+net_admin', '--ambient-caps=+net_admin'] : [];
    const command = [...NOBODY, ...caps, process.execPath, cli, 'doctor', '--json'].join(' ');
    const script = `mount -t tmpfs tmpfs /dev/net && mknod -m 600 /dev/net/tun c 10 200 && exec ${command}`;
    const { stdout } = await new Promise<{ stdout: string }>((resolve) => {
      execFile('unshare', ['--mount', 'sh', '-c', script], { timeout: 20_000 }, (_error, out) =>
        resolve({ stdout: out }),
      );
    });
    return JSON.parse(stdout) as DoctorReport;
  }

  itPrivileged('blames the mode, not a missing CAP_NET_ADMIN, and says how to fix it', async () => {
    const [withCap, withoutCap] = await Promise.all([doctorAsNobody(true), doctorAsNobody(false)]);
    const linux = withCap.backends.find((b) => b.name === 'linux-tap')!;
    expect(linux).toMatchObject({ available: false, code: 'ERR_TAP_PERMISSION_DENIED' });
    expect(linux.reason).toMatch(/\/dev\/net\/tun is mode 0600 .* has CAP_NET_ADMIN already/);
    expect(linux.fix!.join('\n')).toContain('sudo chmod 0666 /dev/net/tun');
    expect(linux.fix!.join('\n')).toContain('KERNEL=="tun", MODE="0666"');
    expect(linux.fix!.join('\n')).not.toContain('setcap');
    // Without the capability either, both are said.
    const bare = withoutCap.backends.find((b) => b.name === 'linux-tap')!;
    expect(bare.reason).toMatch(/lacks CAP_NET_ADMIN too/);
    expect(bare.fix!.join('\n')).toMatch(/chmod 0666[\s\S]*setcap cap_net_admin\+ep/);
  });
});

describe('tapkit list on Linux', () => {
  itPrivileged('tells kinds, peers, bridges, tapkit devices and their owners apart', async () => {
    const ns = await createNetns();
    const elsewhere = await createNetns();
    await ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
    await ns.ip('link', 'add', 'br0', 'type', 'bridge');
    await ns.ip('link', 'set', 'va', 'master', 'br0');
    await ns.ip('addr', 'add', '10.66.0.1/24', 'dev', 'vb');
    for (const name of ['va', 'vb', 'br0']) await ns.ip('link', 'set', name, 'up');
    // Someone else's persistent tap, and one tapkit prepared to stay.
    await ns.ip('tuntap', 'add', 'dev', 'other0', 'mode', 'tap');
    await ns.ip('tuntap', 'add', 'dev', 'tkkeep0', 'mode', 'tap');
    await ns.ip('link', 'set', 'tkkeep0', 'alias', 'tapkit:linux-tap persistent');
    // A device a tapkit process holds here, and one made elsewhere and moved here.
    const here = await holder(ns, process.execPath, [holdTap, 'tkheld0']);
    const away = await holder(elsewhere, process.execPath, [holdTap, 'tkmoved0']);
    await elsewhere.ip('link', 'set', 'tkmoved0', 'netns', ns.name);
    // linux-tap labels its devices (alias tapkit:linux-tap); without the label, the process
    // holding the device is the evidence.
    await ns.ip('link', 'set', 'tkheld0', 'alias', '');
    // A tun held by a program that is not tapkit.
    await ns.ip('tuntap', 'add', 'dev', 'tun7', 'mode', 'tun');
    const python = await holder(ns, 'python3', [attach, 'tun7', 'tun']);

    const { code, stdout } = await tapkit(['list', '--json'], { ns });
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as InterfaceList;
    const get = (name: string) => list.interfaces.find((e) => e.name === name) as InterfaceEntry;
    expect(list.interfaces.map((e) => e.name).sort()).toEqual(
      ['br0', 'lo', 'other0', 'tkheld0', 'tkkeep0', 'tkmoved0', 'tun7', 'va', 'vb'].sort(),
    );
    expect(get('lo')).toMatchObject({ kind: 'loopback', virtual: false });
    expect(get('va')).toMatchObject({ kind: 'veth', peer: 'vb', master: 'br0', virtual: true });
    expect(get('vb')).toMatchObject({ kind: 'veth', peer: 'va' });
    expect(get('vb').addresses).toContain('10.66.0.1/24'); // and an fe80:: one, once DAD is done
    expect(get('br0')).toMatchObject({ kind: 'bridge' });
    expect(get('tun7')).toMatchObject({ kind: 'tun', owners: [{ pid: pidOf(python), command: 'python3' }] });
    expect(get('tun7').tapkit).toBeUndefined();
    expect(get('other0')).toMatchObject({ kind: 'tap', owners: [] });
    expect(get('other0').tapkit).toBeUndefined();
    expect(get('tkkeep0')).toMatchObject({
      kind: 'tap',
      owners: [],
      tapkit: { backend: 'linux-tap', evidence: 'alias', persistent: true },
    });
    expect(get('tkheld0')).toMatchObject({
      kind: 'tap',
      up: true,
      owners: [{ pid: pidOf(here), command: 'node', tapkit: true }],
      tapkit: { backend: 'linux-tap', evidence: 'process', persistent: false },
    });
    expect(get('tkmoved0').owners).toEqual([{ pid: pidOf(away), command: 'node', tapkit: true }]);

    const human = await tapkit(['list'], { ns });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+KIND\s+STATE\s+MTU\s+ADDRESSES\s+TAPKIT\s+HELD BY$/m);
    expect(human.stdout).toMatch(
      new RegExp(`^tkheld0\\s+tap\\s+up\\s+1500\\s+\\S+\\s+yes: linux-tap\\s+${pidOf(here)} node$`, 'm'),
    );
    expect(human.stdout).toMatch(/^va\s+veth \(peer vb, in br0\)/m);
    expect(human.stdout).toMatch(/Virtual interfaces with addresses: vb\./);
  });
});

describe('tapkit cleanup on Linux', () => {
  itPrivileged("removes tapkit's persistent devices whose owner is gone, and nothing else", async () => {
    const ns = await createNetns();
    const start = await processStartTicks(process.pid);
    // A pid that is certainly gone: a child that has exited.
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    onCleanup(() => stopChild(gone));
    const devices: Record<string, string | undefined> = {
      tkstale0: `tapkit:linux-tap persistent pid=${process.pid} start=${start! + 1}`, // pid reused: gone
      tkgone0: `tapkit:linux-tap persistent pid=${gone.pid} start=12345`,
      tklive0: `tapkit:linux-tap persistent pid=${process.pid} start=${start}`,
      tkused0: `tapkit:linux-tap persistent pid=${gone.pid} start=12345`,
      tkkeep0: 'tapkit:linux-tap persistent',
      other0: 'uplink for the lab VM',
      plain0: undefined,
    };
    for (const [name, alias] of Object.entries(devices)) {
      await ns.ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
      if (alias) await ns.ip('link', 'set', name, 'alias', alias);
    }
    await holder(ns, 'python3', [attach, 'tkused0']);
    const names = async () =>
      (await ns.ip('-o', 'link', 'show')).match(/^\d+: ([^:@]+)/gm)!.map((l) => l.split(': ')[1]);

    const dry = await tapkit(['cleanup', '--dry-run', '--json'], { ns });
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as CleanupResult;
    expect(plan.dryRun).toBe(true);
    expect(plan.removed.map((i) => i.name)).toEqual(['tkgone0', 'tkstale0']);
    expect(Object.fromEntries(plan.kept.map((i) => [i.name, i.reason]))).toEqual({
      tkkeep0: expect.stringMatching(/prepared to stay/),
      tklive0: `its owner, process ${process.pid}, is running`,
      tkused0: expect.stringMatching(/^in use by process \d+$/),
    });
    expect(await names()).toEqual(expect.arrayContaining(Object.keys(devices)));

    // Without privileges nothing can be removed: exit 4, and everything is still there.
    const denied = await tapkit(['cleanup', '--json'], { ns, nobody: true });
    expect(denied.code).toBe(4);
    const failures = (JSON.parse(denied.stdout) as CleanupResult).failed;
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.code === 'ERR_TAP_PERMISSION_DENIED')).toBe(true);
    expect(await names()).toEqual(expect.arrayContaining(Object.keys(devices)));

    const done = await tapkit(['cleanup'], { ns });
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^tapkit cleanup: removed 2:$/m);
    expect(done.stdout).toMatch(
      /^\s+tkgone0\s+linux-tap\s+its owner, process \d+, is gone and nothing has it open$/m,
    );
    expect(done.stdout).toMatch(/^left alone 3:$/m);
    expect((await names()).sort()).toEqual(['lo', 'other0', 'plain0', 'tkkeep0', 'tklive0', 'tkused0']);

    const again = await tapkit(['cleanup', '--json'], { ns });
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as CleanupResult).removed).toEqual([]);
  });
});
