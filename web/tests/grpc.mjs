// A tiny board-service client for the tests: boards, lanes, tasks.

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { WEB_ROOT } from './support.mjs';

const PROTO = path.join(WEB_ROOT, '..', 'proto', 'boardwire', 'v1', 'board.proto');

export function boardService(addr) {
  const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const { BoardService } = grpc.loadPackageDefinition(def).boardwire.v1;
  const client = new BoardService(addr.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure());
  const call = (method, request) => new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10000 }, (err, res) => (err ? reject(err) : resolve(res)));
  });
  return {
    createBoard: (name, slug) => call('CreateBoard', { name, ...(slug ? { slug } : {}), requestId: `e2e-${Date.now()}-${Math.random()}` }),
    getBoard: (boardId) => call('GetBoard', { boardId }),
    updateLane: (laneId, changes) => call('UpdateLane', { laneId, ...changes, requestId: `e2e-${Date.now()}-${Math.random()}` }),
    createTask: (boardId, laneId, title, extra = {}) => call('CreateTask', { boardId, laneId, title, requestId: `e2e-${Date.now()}-${Math.random()}`, ...extra }),
    close: () => client.close(),
  };
}
