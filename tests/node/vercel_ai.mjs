// The Vercel AI SDK against aibroker: generateText with `openai(model)`, whose default is the
// Responses API (POST /v1/responses), plain and with one tool run to its final answer.
// Prints one JSON object for the test.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";

const openai = createOpenAI({ baseURL: `${process.env.AIBROKER_URL}/v1`, apiKey: process.env.AIBROKER_KEY });

const result = await generateText({ model: openai("mock-chat"), prompt: "Hello from the Vercel AI SDK", maxRetries: 0 });

const weather = tool({
  description: "The current weather in a city",
  inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false }),
  execute: async ({ city }) => `sunny in ${city}`,
});
const agent = await generateText({
  model: openai("mock-chat"), prompt: "What is the weather in Lima?", tools: { weather }, stopWhen: stepCountIs(3), maxRetries: 0,
});

console.log(JSON.stringify({
  text: result.text,
  finishReason: result.finishReason,
  usage: result.usage,
  responseId: result.response.id,
  modelId: result.response.modelId,
  tool: {
    text: agent.text,
    steps: agent.steps.map((s) => ({ finishReason: s.finishReason, toolCalls: s.toolCalls.map((c) => ({ name: c.toolName, input: c.input })), responseId: s.response.id })),
    toolResults: agent.steps.flatMap((s) => s.toolResults.map((r) => r.output)),
  },
}));
