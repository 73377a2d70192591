// The Node `openai` SDK against aibroker: responses.create, and embeddings.create with the SDK's
// default encoding (it asks for base64 and decodes it). Prints one JSON object for the test.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: `${process.env.AIBROKER_URL}/v1`, apiKey: process.env.AIBROKER_KEY, maxRetries: 0 });

const response = await client.responses.create({ model: "mock-chat", input: "Hello from Node", instructions: "Be brief." });
const embedding = await client.embeddings.create({ model: "mock-embed", input: "a sentence to embed" });

console.log(JSON.stringify({
  response: { id: response.id, status: response.status, model: response.model, output_text: response.output_text, usage: response.usage },
  embedding: { model: embedding.model, vector: embedding.data[0].embedding, usage: embedding.usage },
}));
