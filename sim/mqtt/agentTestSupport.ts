// Goal: what the agent tests share: the HTTP status a WebSocket handshake with the coordinator is answered with,
// so that a client without the run's token can be shown refused (401) and one with it accepted (101).
// Method: a real `ws` client; the status comes from the upgrade response, or 101 when the socket opens.

import { WebSocket } from 'ws';

/** The HTTP status a WebSocket handshake is answered with (101 when accepted). */
export function handshakeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('open', () => {
      resolve(101);
      socket.close();
    });
    socket.on('error', reject);
  });
}
