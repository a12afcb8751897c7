// `@vigil/gateway-plugin`: the gateway-agnostic plugin, the HTTP API, and the embedded reference
// gateway behind `vigil serve`. The OpenClaw adapter is the `./openclaw` subpath.
export type {
  EmbeddedGateway,
  EmbeddedGatewayOptions,
  GatewayClusterOptions,
  GatewayHttpOptions,
} from './cli/gateway.js';
export { startGateway } from './cli/gateway.js';
export type { ClusterRouting, ForwardedReply, ForwardRequest } from './http/cluster-routing.js';
export type { ErrorBody } from './http/errors.js';
export type { HttpHandler, HttpHandlerStats, StreamInfo } from './http/handler.js';
export { createHttpHandler } from './http/handler.js';
export type { HttpApiOptions } from './http/options.js';
export type { CorsOptions, HostAllowlist } from './http/security.js';
export { decodeStreamId, encodeStreamId } from './http/sse-stream.js';
export type { DropReason } from './http/sse-writer.js';
export type { GatewayPlugin, GatewayPluginOptions, SessionHookContext } from './plugin/plugin.js';
export { createGatewayPlugin } from './plugin/plugin.js';
export type { ProcessToolInput, ToolContext, ToolDefinition, ToolResult } from './plugin/process-tool.js';
export { processToolInputSchema } from './plugin/process-tool.js';
export type { RenderedNotification } from './plugin/render.js';
export { renderBatch, renderNotification } from './plugin/render.js';
