package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Test AWS settings: moto accepts any credentials; the account id is moto's default.
const (
	Region          = "us-east-1"
	AccountID       = "123456789012"
	accessKeyID     = "testing"
	secretAccessKey = "testing"
	motoStartup     = 60 * time.Second
)

// ErrMotoNotFound means moto_server is not installed. Tests must fail on it, never skip: CI
// has moto, and a skipped end-to-end test hides a broken build.
var ErrMotoNotFound = errors.New("moto_server not found on PATH (pip install 'moto[server]')")

// Moto is a moto_server process on a free localhost port.
type Moto struct {
	Endpoint string // http://127.0.0.1:<port>

	proc *process
	cfg  aws.Config
	sqs  *sqs.Client
	sm   *secretsmanager.Client

	// recvMu serialises ReceiveMessage: SQS hands a FIFO message group to one receiver at a time,
	// but moto_server answers requests on several threads and two concurrent receives can both
	// see a group as free, giving one group to two consumers at once.
	recvMu sync.Mutex
}

// StartMoto starts moto_server on a free port and waits until it answers.
func StartMoto() (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrMotoNotFound
	}
	var lastErr error
	// The free port can be taken between our probe and moto's bind; try a few.
	for range 3 {
		m, err := startMoto(bin)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startMoto(bin string) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	p, err := startProcess(cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), proc: p}
	ctx, cancel := context.WithTimeout(context.Background(), motoStartup)
	defer cancel()
	if err := m.waitReady(ctx); err != nil {
		p.stop()
		return nil, fmt.Errorf("start moto: %w\n%s", err, tail(p.output.String(), 2000))
	}
	m.cfg = aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		BaseEndpoint: aws.String(m.Endpoint),
	}
	m.sqs = sqs.NewFromConfig(m.cfg)
	m.sm = secretsmanager.NewFromConfig(m.cfg)
	return m, nil
}

func (m *Moto) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.Endpoint+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.proc.exited:
			return fmt.Errorf("moto_server exited: %v", m.proc.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("moto_server not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops moto_server and its children.
func (m *Moto) Close() error {
	m.proc.stop()
	return nil
}

// Output is what moto_server printed (its request log), for failure messages.
func (m *Moto) Output() string { return m.proc.output.String() }

// Env is the environment that points a function's AWS SDK at this moto: the SDK honours
// AWS_ENDPOINT_URL itself.
func (m *Moto) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":          m.Endpoint,
		"AWS_REGION":                Region,
		"AWS_DEFAULT_REGION":        Region,
		"AWS_ACCESS_KEY_ID":         accessKeyID,
		"AWS_SECRET_ACCESS_KEY":     secretAccessKey,
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// AWSConfig is an SDK configuration for this moto.
func (m *Moto) AWSConfig() aws.Config { return m.cfg.Copy() }

// SQS is an SQS client for this moto.
func (m *Moto) SQS() *sqs.Client { return m.sqs }

// SecretsManager is a Secrets Manager client for this moto.
func (m *Moto) SecretsManager() *secretsmanager.Client { return m.sm }

// Reset drops every resource moto holds (moto's /moto-api/reset).
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: status %d", resp.StatusCode)
	}
	return nil
}

// Queue is a FIFO queue and, when created with one, its dead-letter queue.
type Queue struct {
	URL, ARN       string
	DLQURL, DLQARN string
}

// CreateFIFOQueue creates a FIFO queue (".fifo" is appended when missing) with explicit
// deduplication ids, as the template does. maxReceive > 0 adds a dead-letter queue
// "<name>-dlq.fifo" that receives a message after maxReceive receives.
func (m *Moto) CreateFIFOQueue(ctx context.Context, name string, maxReceive int) (Queue, error) {
	name = strings.TrimSuffix(name, ".fifo")
	var q Queue
	attrs := map[string]string{
		"FifoQueue":                 "true",
		"ContentBasedDeduplication": "false",
		"VisibilityTimeout":         "30",
	}
	if maxReceive > 0 {
		var err error
		q.DLQURL, q.DLQARN, err = m.createQueue(ctx, name+"-dlq.fifo", map[string]string{"FifoQueue": "true"})
		if err != nil {
			return Queue{}, err
		}
		policy, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": q.DLQARN,
			"maxReceiveCount":     strconv.Itoa(maxReceive),
		})
		attrs["RedrivePolicy"] = string(policy)
	}
	var err error
	q.URL, q.ARN, err = m.createQueue(ctx, name+".fifo", attrs)
	return q, err
}

func (m *Moto) createQueue(ctx context.Context, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := m.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	a, err := m.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s arn: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), a.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// Message is one received SQS message with the attributes the tests look at.
type Message struct {
	ID, Body, ReceiptHandle string
	GroupID, DedupID        string // MessageGroupId, MessageDeduplicationId
	ReceiveCount            int
	Attributes              map[string]string // system attributes (SentTimestamp, …)
	MessageAttributes       map[string]string // String message attributes the sender set
}

// Receive receives up to max (1 to 10) visible messages without deleting them.
func (m *Moto) Receive(ctx context.Context, queueURL string, max int) ([]Message, error) {
	m.recvMu.Lock()
	defer m.recvMu.Unlock()
	out, err := m.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(queueURL),
		MaxNumberOfMessages:         int32(max),
		WaitTimeSeconds:             0,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", queueURL, err)
	}
	msgs := make([]Message, len(out.Messages))
	for i, x := range out.Messages {
		n, _ := strconv.Atoi(x.Attributes["ApproximateReceiveCount"])
		msgs[i] = Message{
			ID:            aws.ToString(x.MessageId),
			Body:          aws.ToString(x.Body),
			ReceiptHandle: aws.ToString(x.ReceiptHandle),
			GroupID:       x.Attributes["MessageGroupId"],
			DedupID:       x.Attributes["MessageDeduplicationId"],
			ReceiveCount:  n,
			Attributes:    x.Attributes,
		}
		for k, v := range x.MessageAttributes {
			if msgs[i].MessageAttributes == nil {
				msgs[i].MessageAttributes = map[string]string{}
			}
			msgs[i].MessageAttributes[k] = aws.ToString(v.StringValue)
		}
	}
	return msgs, nil
}

// ReceiveAll drains the queue: it receives and deletes until a receive comes back empty, and
// returns the messages in receive order. Deleting is needed because a FIFO queue hides the rest
// of a message group while one of its messages is in flight. Note that moto, unlike SQS, forgets
// a deduplication id once its message is deleted.
func (m *Moto) ReceiveAll(ctx context.Context, queueURL string) ([]Message, error) {
	var all []Message
	for {
		msgs, err := m.Receive(ctx, queueURL, 10)
		if err != nil {
			return all, err
		}
		if len(msgs) == 0 {
			return all, nil
		}
		for _, x := range msgs {
			if err := m.DeleteMessage(ctx, queueURL, x.ReceiptHandle); err != nil {
				return all, err
			}
		}
		all = append(all, msgs...)
	}
}

// DeleteMessage deletes one received message.
func (m *Moto) DeleteMessage(ctx context.Context, queueURL, receiptHandle string) error {
	_, err := m.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(receiptHandle)})
	if err != nil {
		return fmt.Errorf("delete message from %s: %w", queueURL, err)
	}
	return nil
}

// Depth is the number of messages in the queue, visible and in flight.
func (m *Moto) Depth(ctx context.Context, queueURL string) (int, error) {
	out, err := m.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", queueURL, err)
	}
	visible, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inflight, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible + inflight, nil
}

// CreateSecret creates a secret with a string value and returns its ARN.
func (m *Moto) CreateSecret(ctx context.Context, name, value string) (string, error) {
	out, err := m.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		// The SDK error names the operation and code, not the value.
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}
	return aws.ToString(out.ARN), nil
}

// PutSecretValue stores a new current version of a secret: what a rotation does.
func (m *Moto) PutSecretValue(ctx context.Context, id, value string) error {
	_, err := m.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
	if err != nil {
		return fmt.Errorf("put secret %s: %w", id, err)
	}
	return nil
}

// SecretJSON is the secret's JSON with the connector's keys; empty values are left out.
func SecretJSON(authTokenForOkta, awsSSOSCIMKey, oktaAPIToken string) string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"auth_token_for_okta": authTokenForOkta,
		"aws_sso_scim_key":    awsSSOSCIMKey,
		"okta_api_token":      oktaAPIToken,
	} {
		if v != "" {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
