// The Vercel AI SDK against aibroker: generateText with `openai(model)`, whose default is the
// Responses API (POST /v1/responses). Prints one JSON object for the test.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText } from "ai";

const openai = createOpenAI({ baseURL: `${process.env.AIBROKER_URL}/v1`, apiKey: process.env.AIBROKER_KEY });

const result = await generateText({ model: openai("mock-chat"), prompt: "Hello from the Vercel AI SDK", maxRetries: 0 });

console.log(JSON.stringify({
  text: result.text,
  finishReason: result.finishReason,
  usage: result.usage,
  responseId: result.response.id,
  modelId: result.response.modelId,
}));
