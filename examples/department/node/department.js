#!/usr/bin/env node
// A Gridwhistle department in Node (amqplib): take one work item from dept.<department_id>,
// print it, accept it on gw.commands, exit 0. Contract: docs/asyncapi/department.json, guide:
// docs/integrators.md. Run through ./run.sh, which installs amqplib from package-lock.json.
//
//   GW_AMQP_URL     amqp://user:password@host:5672/vhost (the department's broker user)
//   GW_DEPARTMENT_ID  e.g. changjia.emergency_safety
//   GW_EXAMPLE_TIMEOUT  seconds to wait for a work item (default 30)
'use strict';

const crypto = require('node:crypto');
const amqp = require('amqplib');

const COMMANDS = 'gw.commands'; // topic exchange, routing key <town_id>.<command_type>
const SCHEMA_VERSION = 2; // the contract version this client was written against

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
}

async function main() {
  const url = required('GW_AMQP_URL');
  const departmentId = required('GW_DEPARTMENT_ID');
  const timeoutMs = Number(process.env.GW_EXAMPLE_TIMEOUT || 30) * 1000;
  const queue = `dept.${departmentId}`;

  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel(); // publisher confirms
    const returned = [];
    channel.on('return', (message) => returned.push(message)); // mandatory and unroutable
    // Passive checks only: a department user has no configure permission, so it never
    // declares or binds; the services declared the queue and the exchange.
    await channel.checkQueue(queue);
    await channel.checkExchange(COMMANDS);
    await channel.prefetch(1);

    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no work item on ${queue} within ${timeoutMs} ms`)), timeoutMs);
      channel
        .consume(queue, (delivery) => {
          if (delivery === null) return reject(new Error('consumer cancelled by the broker'));
          handle(channel, delivery, departmentId, returned).then(
            (accepted) => {
              if (accepted) {
                clearTimeout(timer);
                resolve();
              }
            },
            (error) => {
              clearTimeout(timer);
              reject(error);
            },
          );
        }, { noAck: false })
        .catch(reject);
    });
    await done;
    await channel.close();
  } finally {
    await connection.close();
  }
}

// Returns true once a matter_dispatched was accepted; other work items are acknowledged and skipped.
async function handle(channel, delivery, departmentId, returned) {
  const event = JSON.parse(delivery.content.toString('utf8'));
  if (event.event_type !== 'matter_dispatched') {
    channel.ack(delivery); // e.g. matter_escalated: a notice, nothing to accept
    return false;
  }
  const matter = event.matter; // MatterSnapshot: this department's part is among its owners
  const me = (matter.owners || []).find((owner) => owner.owner_id === departmentId);
  if (!me) {
    channel.ack(delivery);
    return false;
  }
  console.log(`matter ${event.matter_id} round ${event.round} role ${me.role} state ${me.state}`);

  const command = {
    message_id: crypto.randomUUID(),
    occurred_at: new Date().toISOString(),
    schema_version: SCHEMA_VERSION,
    matter_id: event.matter_id,
    town_id: event.town_id,
    grid_id: event.grid_id,
    correlation_id: event.matter_id,
    command_type: 'accept_matter',
    actor_id: departmentId,
    round: event.round, // the round this command acts on
  };
  channel.publish(COMMANDS, `${command.town_id}.${command.command_type}`, Buffer.from(JSON.stringify(command)), {
    persistent: true,
    mandatory: true,
    contentType: 'application/json',
    messageId: command.message_id,
    correlationId: command.correlation_id,
    type: command.command_type,
  });
  await channel.waitForConfirms(); // rejects when the broker nacks
  if (returned.length > 0) throw new Error('accept_matter was unroutable (returned by the broker)');
  channel.ack(delivery); // only after the command is safely on the broker
  console.log(`accepted matter ${event.matter_id} round ${event.round}`);
  return true;
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  },
);
