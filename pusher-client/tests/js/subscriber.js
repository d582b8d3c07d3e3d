// Subscribes to channels with the unmodified pusher-js client (its Node build,
// which includes the encrypted-channel support) and reports what happens as
// JSON lines on stdout, for pusher-client's integration tests.
//
// Environment:
//   PUSHER_KEY       app key
//   WS_HOST, WS_PORT where the Pusher-compatible server listens
//   AUTH_URL         channel authorization endpoint (GET ?socket_id=&channel_name=)
//   USER_AUTH_URL    optional user authentication endpoint (GET ?socket_id=); when
//                    set, the client signs in and reports server-to-user events
//   CHANNELS         comma-separated channels to subscribe to
//   EXPECT_EVENTS    exit 0 after this many events (default: run until killed)
//   TIMEOUT_MS       exit 1 after this long (default 30000)
'use strict';

const Pusher = require('pusher-js');

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const channels = (process.env.CHANNELS || '').split(',').filter(Boolean);
const expect = Number(process.env.EXPECT_EVENTS || 0);
const timeout = Number(process.env.TIMEOUT_MS || 30000);
let received = 0;

const pusher = new Pusher(process.env.PUSHER_KEY, {
  cluster: 'mt1',
  wsHost: process.env.WS_HOST,
  wsPort: Number(process.env.WS_PORT),
  forceTLS: false,
  enabledTransports: ['ws'],
  disableStats: true,
  channelAuthorization: {
    customHandler: ({ socketId, channelName }, callback) => {
      getJson(`${process.env.AUTH_URL}?socket_id=${encodeURIComponent(socketId)}` +
        `&channel_name=${encodeURIComponent(channelName)}`, callback);
    },
  },
  userAuthentication: {
    customHandler: ({ socketId }, callback) => {
      getJson(`${process.env.USER_AUTH_URL}?socket_id=${encodeURIComponent(socketId)}`, callback);
    },
  },
});

function getJson(url, callback) {
  fetch(url)
    .then(async (res) => {
      if (!res.ok) throw new Error(`auth endpoint answered ${res.status}`);
      callback(null, await res.json());
    })
    .catch((err) => callback(err, null));
}

const onEvent = (channel, event, data) => {
  emit({ type: 'event', channel, event, data });
  received += 1;
  if (expect && received >= expect) {
    pusher.disconnect();
    setTimeout(() => process.exit(0), 50);
  }
};

if (process.env.USER_AUTH_URL) {
  pusher.signin();
  pusher.user.signinDonePromise.then(() => {
    const channel = pusher.user.serverToUserChannel;
    if (!channel) {
      emit({ type: 'signin_error' });
      return;
    }
    const done = () => emit({ type: 'signed_in', user_id: pusher.user.user_data.id });
    if (channel.subscribed) done();
    else channel.bind('pusher:subscription_succeeded', done);
  });
  pusher.user.bind_global((event, data) => {
    if (event.startsWith('pusher:')) emit({ type: 'user_error', event, data });
    else onEvent(null, event, data);
  });
}

pusher.connection.bind('connected', () => {
  emit({ type: 'connected', socket_id: pusher.connection.socket_id });
});
pusher.connection.bind('error', (err) => emit({ type: 'connection_error', error: String(err && err.error ? JSON.stringify(err.error) : err) }));

for (const name of channels) {
  const channel = pusher.subscribe(name);
  channel.bind('pusher:subscription_succeeded', () => {
    const report = { type: 'subscribed', channel: name };
    if (channel.members) {
      report.members = channel.members.count;
      report.me = channel.members.me && channel.members.me.id;
    }
    emit(report);
  });
  channel.bind('pusher:subscription_error', (status) => emit({ type: 'subscription_error', channel: name, status: JSON.stringify(status) }));
  channel.bind_global((event, data) => {
    if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
    onEvent(name, event, data);
  });
}

setTimeout(() => {
  emit({ type: 'timeout', received });
  process.exit(1);
}, timeout);
