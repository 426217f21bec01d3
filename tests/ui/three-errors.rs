bp::network! {
    struct Net {
        input x: [4];
        let a = linear(x, 8);
        let b = relu(linear(x, 4));
        let c = a * b;
        let d = sigmoyd(c);
        output e;
    }
}

fn main() {}
