#!/usr/bin/env node
// countersd interop client on a third gRPC stack: @grpc/grpc-js (pure
// JavaScript HTTP/2, no gRPC Core) with @grpc/proto-loader (protobuf.js),
// loading proto/counters/v1/counters.proto at run time.
//
// Usage: node interop_client.js --address=HOST:PORT --proto=DIR CHECK...
// (NODE_PATH must point at a node_modules with both packages.)
// Every call has a deadline. Exit status 0 when every check passed; 1 with a
// message naming the failed expectation otherwise.
'use strict';

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEADLINE_MS = 30000;  // per call; generous for a loaded 2-core machine

class CheckFailed extends Error {}
function expect(cond, what) { if (!cond) throw new CheckFailed(what); }
function expectEq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new CheckFailed(`${what}: got ${g}, want ${w}`);
}

function parseArgs() {
  const args = {checks: []};
  for (const a of process.argv.slice(2)) {
    const m = a.match(/^--([a-z-]+)=(.*)$/);
    if (m) args[m[1]] = m[2]; else args.checks.push(a);
  }
  if (!args.address || !args.proto || args.checks.length === 0) {
    console.error('usage: interop_client.js --address=HOST:PORT --proto=DIR CHECK...');
    process.exit(2);
  }
  return args;
}

function loadService(protoDir) {
  const def = protoLoader.loadSync('counters/v1/counters.proto', {
    includeDirs: [protoDir],
    keepCase: true,    // field names as in the .proto
    longs: String,     // int64 as decimal strings: exact beyond 2^53
    defaults: true,    // absent scalars read as their defaults...
    oneofs: true,      // ...and proto3 `optional` presence shows as `_field`
  });
  return grpc.loadPackageDefinition(def).counters.v1.CounterService;
}

class Client {
  constructor(Service, address, ownConnection) {
    // A distinct channel option gives each client its own subchannel (TCP
    // connection), so clients spread over the handlers.
    const options = ownConnection ? {'grpc.use_local_subchannel_pool': 1} : {};
    this.stub = new Service(address, grpc.credentials.createInsecure(), options);
  }
  close() { this.stub.close(); }
  call(method, request) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, {deadline: Date.now() + DEADLINE_MS}, (err, resp) => {
        if (err) reject(err); else resolve(resp);
      });
    });
  }
  async expectCode(code, method, request, what) {
    try {
      const resp = await this.call(method, request);
      throw new CheckFailed(`${what}: ${method} succeeded (${JSON.stringify(resp)}), want ${code}`);
    } catch (e) {
      if (e instanceof CheckFailed) throw e;
      expect(e.code === grpc.status[code],
             `${what}: ${method} failed with ${grpc.status[e.code]} (${e.details}), want ${code}`);
      expect(e.details, `${what}: ${code} without a message`);
    }
  }
}

const checks = {
  // Many concurrent calls on several connections; exact totals.
  async concurrent_increments(Service, args) {
    const clients = Array.from({length: 6}, () => new Client(Service, args.address, true));
    const keys = Array.from({length: 8}, (_, i) => `js/concurrent/${i}`);
    const want = Object.fromEntries(keys.map(k => [k, 0n]));
    // Each client: 40 rounds of 8 calls in flight at once.
    const calls = clients.map(async (client, c) => {
      for (let round = 0; round < 40; ++round) {
        const inFlight = [];
        for (let j = 0; j < 8; ++j) {
          const i = round * 8 + j;
          const key = keys[(c + i) % keys.length];
          if (i % 4 === 0) {  // delta absent: +1
            want[key] += 1n;
            inFlight.push(client.call('Increment', {key}));
          } else {
            const delta = i % 7 + 1;
            want[key] += BigInt(delta);
            inFlight.push(client.call('Increment', {key, delta: String(delta)}));
          }
        }
        await Promise.all(inFlight);
      }
    });
    await Promise.all(calls);
    const got = await clients[0].call('BatchGet', {keys});
    expectEq(got.counters.map(x => [x.key, x.value, x.found]),
             keys.map(k => [k, String(want[k]), true]), 'BatchGet totals');
    clients.forEach(c => c.close());
  },

  // The error codes of the contract, through grpc-js.
  async status_codes(Service, args) {
    const c = new Client(Service, args.address, false);
    for (const [name, key] of [['empty', ''], ['control char', 'a\u0001b'], ['161 bytes', 'k'.repeat(161)]]) {
      await c.expectCode('INVALID_ARGUMENT', 'Increment', {key}, `Increment ${name} key`);
      await c.expectCode('INVALID_ARGUMENT', 'Get', {key}, `Get ${name} key`);
    }
    await c.expectCode('NOT_FOUND', 'Get', {key: 'js/missing'}, 'Get missing');
    await c.expectCode('NOT_FOUND', 'Delete', {key: 'js/missing'}, 'Delete missing');
    const max = '9223372036854775807';
    await c.call('Set', {key: 'js/max', value: max});
    await c.expectCode('OUT_OF_RANGE', 'Increment', {key: 'js/max'}, 'Increment past INT64_MAX');
    expectEq((await c.call('Get', {key: 'js/max'})).value, max, 'value after a refused overflow');
    await c.expectCode('OUT_OF_RANGE', 'IncrementBatch',
                       {increments: [{key: 'js/batch', delta: '1'}, {key: 'js/max', delta: '1'}]},
                       'batch that overflows');
    await c.expectCode('NOT_FOUND', 'Get', {key: 'js/batch'}, 'a refused batch applied nothing');
    c.close();
  },

  // proto3 `optional` presence, as protobuf.js encodes and decodes it.
  async optional_fields(Service, args) {
    const c = new Client(Service, args.address, false);
    expectEq((await c.call('Increment', {key: 'js/opt'})).value, '1', 'delta absent');
    expectEq((await c.call('Increment', {key: 'js/opt', delta: '0'})).value, '1', 'delta 0 present');
    let r = await c.call('Set', {key: 'js/opt/set', value: '0'});
    expect(r._previous_value === undefined, 'Set of a new counter has no previous_value');
    r = await c.call('Set', {key: 'js/opt/set', value: '5'});
    expectEq([r._previous_value, r.previous_value], ['previous_value', '0'],
             'Set of a counter holding 0 has previous_value 0');
    c.close();
  },
};

async function main() {
  const args = parseArgs();
  const Service = loadService(args.proto);
  for (const name of args.checks) {
    if (!checks[name]) { console.error(`unknown check ${name}`); return 2; }
    try {
      await checks[name](Service, args);
    } catch (e) {
      console.error(`FAIL ${name}: ${e instanceof CheckFailed ? e.message : e.stack}`);
      return 1;
    }
    console.log(`ok ${name}`);
  }
  return 0;
}

main().then(code => process.exit(code), e => { console.error(e); process.exit(1); });
