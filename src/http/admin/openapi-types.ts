// The slice of OpenAPI 3.1 the admin document uses.

/** A JSON Schema (2020-12, as OpenAPI 3.1 takes it); the keywords the tests read are named. */
export interface SchemaObject {
  $ref?: string;
  type?: string | string[];
  description?: string;
  enum?: (string | number | boolean | null)[];
  const?: unknown;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  items?: SchemaObject;
  anyOf?: SchemaObject[];
  [keyword: string]: unknown;
}

export interface MediaTypeObject {
  schema: SchemaObject;
}

export interface HeaderObject {
  description?: string;
  schema: SchemaObject;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, MediaTypeObject>;
}

export type ResponseOrRef = ResponseObject | { $ref: string };

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: SchemaObject;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: Record<string, string[]>[];
  parameters?: (ParameterObject | { $ref: string })[];
  requestBody?: { required: boolean; description?: string; content: Record<string, MediaTypeObject> };
  responses: Record<string, ResponseOrRef>;
}

export type HttpMethod = 'get' | 'post' | 'patch' | 'delete' | 'put';
export type PathItemObject = Partial<Record<HttpMethod, OperationObject>>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string; description?: string }[];
  security: Record<string, string[]>[];
  tags: { name: string; description: string }[];
  paths: Record<string, PathItemObject>;
  components: {
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; description: string }>;
    parameters: Record<string, ParameterObject>;
    schemas: Record<string, SchemaObject>;
    responses: Record<string, ResponseObject>;
  };
}
