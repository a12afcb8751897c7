export type { DemoOptions } from './demo.js';
export { runDemo } from './demo.js';
export type { GatewayPlugin, GatewayPluginOptions, SessionHookContext } from './plugin.js';
export { createGatewayPlugin } from './plugin.js';
export type { ProcessToolInput, ToolContext, ToolDefinition, ToolResult } from './process-tool.js';
export { createProcessTool, processToolInputSchema } from './process-tool.js';
export type { RenderedNotification } from './render.js';
export { renderNotification } from './render.js';
