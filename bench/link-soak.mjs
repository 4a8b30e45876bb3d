// The link soak at length (the tests run 30 s of it): TAPKIT_BENCH_LINKSOAK_SECONDS (1800) of
// TCP, UDP floods and ping through a pipeTo relay and a JS-loop relay while an admin flaps their
// interfaces, changes their MTU and adds and removes addresses every few seconds. See
// packages/linux-tap/test/fixtures/link-soak.mjs for the topology and what must hold.
import { spawnSync } from 'node:child_process';
import { runLinkSoak } from '../packages/linux-tap/test/fixtures/link-soak.mjs';
import { nodeFlagsByLabel } from './harness.mjs';

const fmt = (n, digits = 0) =>
  n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export async function benchLinkSoak() {
  const title = 'Link soak (linux-tap relays under link flaps, MTU and address changes)';
  if (process.getuid?.() !== 0) return `${title} skipped: needs root (tap devices, namespaces)`;
  for (const tool of ['iperf3', 'ping']) {
    if (spawnSync(tool, ['-V'], { stdio: 'ignore' }).error) return `${title} skipped: no ${tool}`;
  }
  const seconds = Number(process.env.TAPKIT_BENCH_LINKSOAK_SECONDS ?? 1800);
  const changeEvery = Number(process.env.TAPKIT_BENCH_LINKSOAK_CHANGE_EVERY ?? 3);
  // TAPKIT_BENCH_LINKSOAK_NODE_FLAGS=label=--flag --flag: also a JS loop relay under node with those
  // flags (V8 flags NODE_OPTIONS does not take, such as --min-semi-space-size), beside the others.
  const nodeFlags = nodeFlagsByLabel('TAPKIT_BENCH_LINKSOAK_NODE_FLAGS');
  const { figures, problems } = await runLinkSoak({
    seconds,
    changeEvery,
    sampleEvery: 10,
    relays: ['pipe', 'loop', ...Object.keys(nodeFlags).map((label) => `loop@${label}`)],
    rssFlat: true,
    nodeFlags,
    log: (line) => console.error(line),
  });
  const rows = Object.entries(figures.relays).map(([kind, r]) => {
    const drops = {};
    for (const device of r.frames.drops) {
      for (const [reason, n] of Object.entries(device)) drops[reason] = (drops[reason] ?? 0) + n;
    }
    const rss = r.samples.map((s) => s.rss);
    const events = r.link
      .map((d) => `${d.name} ${d.events.up}/${d.events.mtu}/${d.events.addresses}`)
      .join(', ');
    const changes = r.changes.map((c) => `${c.up}/${c.mtu}/${c.addresses}`).join(', ');
    const ping = r.traffic.ping ? `${r.traffic.ping.received}/${r.traffic.ping.sent}` : '—';
    return [
      `| ${kind} | ${fmt(r.traffic.tcpBytes / 2 ** 30, 2)} GiB in ${r.traffic.tcpRuns} runs, ` +
        `${fmt(r.traffic.udpDatagrams)} UDP datagrams in ${r.traffic.udpRuns} runs, ping ${ping}, ${r.traffic.failedRuns} runs failed ` +
        `| ${fmt(r.frames.read)} | ${fmt(r.frames.written)} | ${Object.entries(drops)
          .map(([k, n]) => `${k} ${fmt(n)}`)
          .join(', ')}, lost to refused writes ${fmt(r.frames.lostFrames)} ` +
        `| ${events} (changes ${changes}) | ${fmt(Math.min(...rss), 1)}–${fmt(Math.max(...rss), 1)} MiB, second-half spread ${fmt(r.rssSpread * 100, 1)}%, trend ${r.rssTrend >= 0 ? '+' : '−'}${fmt(Math.abs(r.rssTrend), 1)} MiB/h ` +
        `| ${r.samples[0]?.fds} → ${r.samples.at(-1)?.fds} |`,
    ].join('');
  });
  return [
    `${title}: ${fmt(seconds)} s, ${figures.changesMade} changes to each relay's links (one every ${changeEvery} s), ` +
      `${problems.length === 0 ? '✅ every frame accounted for, every change followed, RSS flat, no fd growth' : `❌ ${problems.length} problems`}`,
    '',
    `Node flags of the relays: ${process.env.NODE_OPTIONS || 'none'}` +
      Object.entries(nodeFlags)
        .map(([label, flags]) => `; loop@${label}: ${flags.join(' ')}`)
        .join('') +
      '.',
    '',
    '| relay | traffic | frames read | frames written | counted drops | link events up/mtu/addresses | RSS | fds |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    ...Object.entries(figures.relays).map(
      ([kind, r]) =>
        `- ${kind} RSS (MiB), every 10 s: ${r.samples.map((s) => fmt(s.rss, 1)).join(' ')}\n` +
        `- ${kind} V8 heap (MiB): ${r.samples.map((s) => fmt(s.heap, 0)).join(' ')}\n` +
        `- ${kind} V8 young generation (MiB): ${r.samples.map((s) => fmt(s.newSpace, 0)).join(' ')}\n` +
        `- ${kind} V8 old generation (MiB): ${r.samples.map((s) => fmt(s.oldSpace, 0)).join(' ')}\n` +
        `- ${kind} ArrayBuffers (MiB): ${r.samples.map((s) => fmt(s.arrayBuffers, 0)).join(' ')}`,
    ),
    ...problems.map((p) => `- ❌ ${p}`),
  ].join('\n');
}
